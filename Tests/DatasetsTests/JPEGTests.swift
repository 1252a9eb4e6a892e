// JPEG decoding against PIL's pixels (fixtures from scripts/reference/make_codec_fixtures.py), encoding, headers.
import Foundation
import Testing
import Datasets

/// The codec fixtures: images written by PIL and PIL's decoded pixels, listed in Fixtures/codecs/expected.json.
enum CodecFixtures {
  struct Expectation: Decodable, Sendable, CustomStringConvertible {
    var file: String
    var mode: String
    var width: Int
    var height: Int
    var channels: Int
    var pixels: String
    var pilMode: String
    var tolerance: Int

    var colorMode: ImageColorMode {
      switch mode {
      case "rgb": .rgb
      case "indices": .indices
      default: .grayOrRGB
      }
    }
    var description: String { "\(file) as \(mode)" }
  }

  struct Manifest: Decodable {
    var expected: [Expectation]
  }

  static let folder: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/codecs")

  static let expectations: [Expectation] = {
    let data = try! Data(contentsOf: folder.appendingPathComponent("expected.json"))
    return try! JSONDecoder().decode(Manifest.self, from: data).expected
  }()

  static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

  static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

  /// PIL's pixels for an expectation, as an `Image`.
  static func expectedImage(_ expectation: Expectation) throws -> Image {
    Image(width: expectation.width, height: expectation.height, channels: expectation.channels,
          pixels: try bytes(expectation.pixels))
  }
}

/// Expects equal sizes and pixels within `tolerance`, reporting how many differ and by how much.
func expectPixels(_ actual: Image, _ expected: Image, tolerance: Int = 0, _ comment: String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
  let shape = (actual.width, actual.height, actual.channels)
  #expect(shape == (expected.width, expected.height, expected.channels),
          "\(comment): shape \(shape)", sourceLocation: sourceLocation)
  guard actual.pixels.count == expected.pixels.count else { return }
  var differing = 0
  var largest = 0
  for (a, b) in zip(actual.pixels, expected.pixels) where a != b {
    differing += 1
    largest = max(largest, abs(Int(a) - Int(b)))
  }
  #expect(largest <= tolerance,
          "\(comment): \(differing) of \(actual.pixels.count) samples differ, by up to \(largest)",
          sourceLocation: sourceLocation)
}

@Suite struct JPEGTests {
  static let jpegExpectations = CodecFixtures.expectations.filter { $0.file.hasSuffix(".jpg") }

  /// Every fixture JPEG decodes to exactly PIL's pixels: 4:2:0, 4:2:2 with odd sizes, 4:4:4 progressive, optimised
  /// Huffman tables with restart markers, gray, and Adobe CMYK.
  @Test(arguments: jpegExpectations)
  func decodesToPILPixels(_ expectation: CodecFixtures.Expectation) throws {
    let decoded = try decodeJPEG(try CodecFixtures.bytes(expectation.file), mode: expectation.colorMode)
    expectPixels(decoded, try CodecFixtures.expectedImage(expectation), tolerance: expectation.tolerance,
                 expectation.description)
  }

  @Test func headerGivesDimensionsWithoutDecoding() throws {
    let color = try jpegHeader(try CodecFixtures.bytes("coffee_75x51_q85_422.jpg"))
    #expect(color == ImageHeader(format: .jpeg, width: 75, height: 51, channels: 3, hasPalette: false))
    let gray = try ImageHeader(contentsOf: CodecFixtures.url("camera_64x64_gray.jpg"))
    #expect(gray == ImageHeader(format: .jpeg, width: 64, height: 64, channels: 1, hasPalette: false))
  }

  @Test func grayDecodesToOneChannelOrReplicatedRGB() throws {
    let bytes = try CodecFixtures.bytes("camera_64x64_gray.jpg")
    let gray = try decodeJPEG(bytes)
    let rgb = try decodeJPEG(bytes, mode: .rgb)
    #expect(gray.channels == 1 && rgb.channels == 3)
    #expect(rgb[5, 7, 0] == gray[5, 7, 0] && rgb[5, 7, 2] == gray[5, 7, 0])
  }

  /// PIL encoded the astronaut's decoded pixels at quality 90, 4:2:0; our encoder must produce a JPEG that
  /// decodes to the same pixels (same quantisation tables, accurate DCT, same chroma downsampling).
  @Test func encoderMatchesPILAtTheSameQuality() throws {
    let original = try decodeJPEG(try CodecFixtures.bytes("astronaut_96x96_q90.jpg"))
    let encoded = try encodeJPEG(original, quality: 90, subsampling: .chroma420)
    let expectation = try #require(CodecFixtures.expectations.first {
      $0.file == "astronaut_96x96_q90_reencoded_by_pil.jpg"
    })
    expectPixels(try decodeJPEG(encoded), try CodecFixtures.expectedImage(expectation), "re-encoded at quality 90")
  }

  /// Quality 95 without chroma subsampling stays within a few levels of a real photo; 4:2:0 loses chroma detail,
  /// so only its mean error is bounded.
  @Test func roundTripAtQuality95StaysClose() throws {
    let photo = try decodeJPEG(try CodecFixtures.bytes("astronaut_96x96_q90.jpg"))
    for (subsampling, maximum, mean) in [(JPEGSubsampling.chroma444, 12, 1.5), (.chroma420, 60, 3.0)] {
      let decoded = try decodeJPEG(try encodeJPEG(photo, quality: 95, subsampling: subsampling))
      #expect(decoded.width == 96 && decoded.height == 96 && decoded.channels == 3)
      let errors = zip(decoded.pixels, photo.pixels).map { abs(Int($0) - Int($1)) }
      let meanError = Double(errors.reduce(0, +)) / Double(errors.count)
      #expect(errors.max()! <= maximum && meanError <= mean,
              "\(subsampling): max error \(errors.max()!), mean \(meanError)")
    }
    let gray = try decodeJPEG(try CodecFixtures.bytes("camera_64x64_gray.jpg"))
    let grayRoundTrip = try decodeJPEG(try encodeJPEG(gray, quality: 95))
    #expect(grayRoundTrip.channels == 1)
    #expect(zip(grayRoundTrip.pixels, gray.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 8 })
  }

  @Test func trailingBytesAfterTheImageAreIgnoredAsPILDoes() throws {
    let bytes = try CodecFixtures.bytes("coffee_75x51_q85_422.jpg")
    let clean = try decodeJPEG(bytes)
    #expect(try decodeJPEG(bytes + [0x00, 0x13, 0x37, 0xFF, 0x00]) == clean)
  }

  @Test func truncatedScanDataIsReportedAsTruncated() throws {
    let bytes = try CodecFixtures.bytes("astronaut_96x96_q90.jpg")
    #expect {
      try decodeJPEG(Array(bytes.prefix(bytes.count * 2 / 3)), source: "cut.jpg")
    } throws: { error in
      guard case let .truncated(path, detail)? = error as? ImageIOError else { return false }
      return path == "cut.jpg" && detail.contains("Premature end")
    }
  }

  @Test func indicesAreRefusedForJPEG() throws {
    #expect(throws: ImageIOError.self) {
      try decodeJPEG(try CodecFixtures.bytes("camera_64x64_gray.jpg"), mode: .indices)
    }
  }

  /// A frame header declaring 65000×65000 pixels is refused before anything is allocated.
  @Test func hugeDeclaredSizeIsRefused() throws {
    var bytes = try CodecFixtures.bytes("camera_64x64_gray.jpg")
    let frame = try #require((0..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
    bytes.replaceSubrange(frame + 5..<frame + 9, with: [0xFD, 0xE8, 0xFD, 0xE8])  // height, width = 65000
    #expect {
      try decodeJPEG(bytes)
    } throws: { error in
      if case .tooLarge(_, 65000, 65000, Image.maximumPixelCount)? = error as? ImageIOError { return true }
      return false
    }
  }
}
