import Testing
import Tensors
import TestSupport

@Suite struct GEMMTests {
  @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
  func matchesNaiveReference(transposeA: Bool, transposeB: Bool) {
    var rng = SplitMix64(seed: 7)
    let (m, n, k) = (5, 7, 3)
    let a = Tensor.randomNormal([m * k], using: &rng).scalars
    let b = Tensor.randomNormal([k * n], using: &rng).scalars
    var c = [Float](repeating: 0, count: m * n)
    a.withUnsafeBufferPointer { ap in
      b.withUnsafeBufferPointer { bp in
        c.withUnsafeMutableBufferPointer { cp in
          gemm(m: m, n: n, k: k, ap.baseAddress!, transposeA: transposeA, bp.baseAddress!,
               transposeB: transposeB, into: cp.baseAddress!)
        }
      }
    }
    let expected = naiveGEMM(m: m, n: n, k: k, a, transposeA: transposeA, b, transposeB: transposeB)
    expectClose(Tensor(shape: [m, n], scalars: c), Tensor(shape: [m, n], scalars: expected), rtol: 1e-5, atol: 1e-5)
  }

  @Test func handComputedProduct() {
    // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
    let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
    var c = [Float](repeating: 0, count: 4)
    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
      gemm(m: 2, n: 2, k: 2, ap.baseAddress!, bp.baseAddress!, into: cp.baseAddress!)
    } } }
    #expect(c == [19, 22, 43, 50])
  }

  @Test func singleThreadedRegionsRunGEMMsFromParallelChunksAndRestoreThreads() {
    // 16 independent 33×9 · 9×5 products, each computed inside a parallelForEach item, must equal the naive ones;
    // afterwards OpenBLAS is back at Threads.count threads. (Read outside any region: other suites open their own
    // regions concurrently, so blasDescription's thread count may say 1 at any moment — CI failed on that once.)
    var rng = SplitMix64(seed: 8)
    let (m, n, k, count) = (33, 5, 9, 16)
    let a = Tensor.randomNormal([count, m, k], using: &rng).scalars
    let b = Tensor.randomNormal([k, n], using: &rng).scalars
    var c = [Float](repeating: .nan, count: count * m * n)
    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
      let (ap, bp, cp) = (ap.baseAddress!, bp.baseAddress!, cp.baseAddress!)
      withSingleThreadedBLAS {
        withSingleThreadedBLAS {  // regions nest
          parallelForEach(count) { item, _ in
            gemmOnThisThread(m: m, n: n, k: k, ap + item * m * k, bp, into: cp + item * m * n)
          }
        }
      }
    } } }
    for item in 0..<count {
      let expected = naiveGEMM(m: m, n: n, k: k, Array(a[(item * m * k)..<((item + 1) * m * k)]), b)
      expectClose(Tensor(shape: [m, n], scalars: Array(c[(item * m * n)..<((item + 1) * m * n)])),
                  Tensor(shape: [m, n], scalars: expected), rtol: 1e-5, atol: 1e-5, "item \(item)")
    }
    let threads = openBLASThreadsOutsideSingleThreadedRegions()
    #expect(threads.openBLAS == threads.configured)
  }
}

@Suite struct LayoutTests {
  @Test func nchwRoundTripAndOrder() {
    let x = Tensor(shape: [1, 2, 2, 3], scalars: (0..<12).map(Float.init))  // NCHW: c=2, h=2, w=3
    let nhwc = x.nchwToNHWC()
    #expect(nhwc.shape == [1, 2, 3, 2])
    // NHWC element (h=0, w=1, c=1) is NCHW element (c=1, h=0, w=1) = 1·6 + 0·3 + 1 = 7.
    #expect(nhwc[[0, 0, 1, 1]] == 7)
    #expect(nhwc.nhwcToNCHW() == x)
  }

  @Test func parallelForCoversRangeOnce() {
    var hits = [Int](repeating: 0, count: 10_000)
    hits.withUnsafeMutableBufferPointer { buffer in
      let pointer = buffer.baseAddress!
      parallelFor(0..<10_000, minimumChunk: 100) { range in for i in range { pointer[i] += 1 } }
    }
    #expect(hits.allSatisfy { $0 == 1 })
  }

  @Test(arguments: [0, 1, 3, 1_000])
  func parallelForEachVisitsEveryIndexOnce(count: Int) {
    var hits = [Int](repeating: 0, count: count)
    var workers = [Int](repeating: -1, count: count)
    hits.withUnsafeMutableBufferPointer { buffer in
      workers.withUnsafeMutableBufferPointer { workerBuffer in
        let (pointer, workerPointer) = (buffer.baseAddress, workerBuffer.baseAddress)
        parallelForEach(count) { index, worker in
          pointer![index] += 1
          workerPointer![index] = worker
        }
      }
    }
    #expect(hits.allSatisfy { $0 == 1 })
    #expect(workers.allSatisfy { (0..<parallelForEachWorkers(count)).contains($0) })
  }
}
