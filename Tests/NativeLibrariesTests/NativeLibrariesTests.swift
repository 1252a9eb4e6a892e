// The system-library shims link and work: liblinear trains, TurboJPEG round-trips, libpng and OpenBLAS answer.
import Testing
import COpenBLAS
import CLiblinear
import CTurboJPEG
import CPNG

@Suite struct NativeLibrariesTests {
  @Test func openBLASReportsItsConfiguration() {
    let config = String(cString: openblas_get_config())
    #expect(config.contains("OpenBLAS"))
    #expect(openblas_get_num_threads() >= 1)
  }

  /// Two separable points per class on the x-axis; the L2-loss dual SVC (solver 1, the VOC07 protocol's
  /// LinearSVC) must classify them, with a bias feature appended as liblinear requires.
  @Test func liblinearTrainsTheVOCSolver() throws {
    #expect(clinear_version() >= 230)
    // Rows (x, bias) with feature indices 1 and 2, each terminated by index -1, in one flat buffer.
    let xs: [Double] = [-2, -1.5, 1.5, 2]
    var nodes: [feature_node] = xs.flatMap { x in
      [feature_node(index: 1, value: x), feature_node(index: 2, value: 1), feature_node(index: -1, value: 0)]
    }
    var labels: [Double] = [-1, -1, 1, 1]
    var weightLabels: [Int32] = [1, -1]
    var weights: [Double] = [2, 1]  // class_weight={1: 2, -1: 1}
    var result = [Double](repeating: 0, count: xs.count)
    nodes.withUnsafeMutableBufferPointer { flat in
      var rows: [UnsafeMutablePointer<feature_node>?] = xs.indices.map { flat.baseAddress! + 3 * $0 }
      labels.withUnsafeMutableBufferPointer { y in
        rows.withUnsafeMutableBufferPointer { x in
          weightLabels.withUnsafeMutableBufferPointer { wl in
            weights.withUnsafeMutableBufferPointer { w in
              var problem = problem(l: Int32(xs.count), n: 2, y: y.baseAddress, x: x.baseAddress, bias: 1)
              var parameter = CLiblinear.parameter(
                solver_type: Int32(L2R_L2LOSS_SVC_DUAL), eps: 1e-4, C: 1, nr_weight: 2,
                weight_label: wl.baseAddress, weight: w.baseAddress, p: 0.1, init_sol: nil)
              // liblinear prints its iteration count here; its print function is left alone because the
              // evaluators install theirs per solve and read the iteration-cap warning through it.
              #expect(check_parameter(&problem, &parameter) == nil)
              let model = train(&problem, &parameter)!
              for i in xs.indices { result[i] = predict(model, x[i]) }
              var modelPointer: UnsafeMutablePointer<model>? = model
              free_and_destroy_model(&modelPointer)
            }
          }
        }
      }
    }
    #expect(result == [-1, -1, 1, 1])
  }

  /// A 16×16 RGB gradient survives JPEG compression at quality 95 within a few grey levels.
  @Test func turboJPEGRoundTrips() {
    let (width, height) = (16, 16)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height { for x in 0..<width { for c in 0..<3 {
      pixels[(y * width + x) * 3 + c] = UInt8((x * 16 + y * 4 + c * 30) % 256)
    } } }
    let compressor = tjInitCompress()!
    defer { tjDestroy(compressor) }
    var jpeg: UnsafeMutablePointer<UInt8>? = nil
    var jpegSize: UInt = 0
    let compressed = tjCompress2(compressor, pixels, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue),
                                 &jpeg, &jpegSize, Int32(TJSAMP_444.rawValue), 95, 0)
    #expect(compressed == 0)
    defer { tjFree(jpeg) }
    let decompressor = tjInitDecompress()!
    defer { tjDestroy(decompressor) }
    var decoded = [UInt8](repeating: 0, count: pixels.count)
    let status = tjDecompress2(decompressor, jpeg, jpegSize, &decoded, Int32(width), 0, Int32(height),
                               Int32(TJPF_RGB.rawValue), 0)
    #expect(status == 0)
    let worst = zip(pixels, decoded).map { abs(Int($0) - Int($1)) }.max()!
    #expect(worst <= 12, "largest JPEG round-trip error \(worst)")
  }

  @Test func libpngIsVersion16() {
    let version = png_access_version_number()
    #expect(version >= 10600 && version < 10700, "libpng version \(version)")
  }
}
