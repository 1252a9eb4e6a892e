// AugmentBench: JPEG decode + two SimSiam views at 224×224 (PROTOCOLS §1.1) per image, on real photos, with the
// same number of workers as the PyTorch/PIL side (augment_bench.py) measured in the same run.
// Usage (from benchmarks/): ./prepare_photos.sh; .build/release/AugmentBench [--images .photos] [--workers 2]
//   [--samples 400] [--python python3] [--skip-python]
import ArgumentParser
import Foundation
import Tensors
import Datasets

struct Options: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "AugmentBench",
    abstract: "JPEG decode + two SimSiam views per image, ours against the PIL pipeline (augment_bench.py).")
  @Option(name: .customLong("images"), help: "Folder of JPEG photos (./prepare_photos.sh fills .photos).")
  var imagesDirectory = ".photos"
  @Option(help: "Decoding workers, on both sides.") var workers = 2
  @Option(help: "Images timed per run.") var samples = 400
  @Option(help: "Python with PyTorch and Pillow, for the reference side.") var python = "python3"
  @Flag(help: "Time only our side.") var skipPython = false

  func validate() throws {
    guard workers > 0, samples > 0 else { throw ValidationError("--workers and --samples must be positive.") }
  }
}
let options = Options.parseOrExit()
let (imagesDirectory, workers, samples, python, skipPython) =
  (options.imagesDirectory, options.workers, options.samples, options.python, options.skipPython)

let files = ((try? FileManager.default.contentsOfDirectory(atPath: imagesDirectory)) ?? [])
  .filter { $0.lowercased().hasSuffix(".jpg") || $0.lowercased().hasSuffix(".png") }.sorted()
guard !files.isEmpty else {
  print("AugmentBench: no photos in \(imagesDirectory); run ./prepare_photos.sh first.")
  exit(1)
}
let blobs = try files.map { try Data(contentsOf: URL(fileURLWithPath: imagesDirectory).appendingPathComponent($0)) }

// Our kernels run one per worker thread (the loader parallelises across images), as PIL does per process.
Threads.configure(1)
let augmentation = SimSiamAugmentation(size: 224)

/// Decodes sample `i`'s photo and makes its two views, with randomness from (seed, epoch, index).
@Sendable func twoViews(_ i: Int) throws -> (Tensor, Tensor) {
  let image = try Image(decoding: blobs[i % blobs.count], mode: .rgb, source: files[i % files.count])
  var rng = SplitMix64.derived(0, 0, UInt64(i))
  return (augmentation(image, using: &rng), augmentation(image, using: &rng))
}

func run(samples: Int) throws -> Double {
  let plan = EpochPlan(sampleCount: samples, batchSize: 8, shuffle: false, dropLast: false, seed: 0, epoch: 0)
  let loader = BatchLoader<Int>(plan: plan, workers: workers, prefetch: 2 * workers) { indices, _ in
    for i in indices { _ = try twoViews(i) }
    return indices.count
  }
  let start = ContinuousClock.now
  var done = 0
  while let count = try loader.next() { done += count }
  let elapsed = (ContinuousClock.now - start).components
  return Double(done) / (Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18)
}

_ = try run(samples: 4 * workers)  // warm-up
let ours = try run(samples: samples)
print(String(format: "ours: %d images (2 views each) in %.2f s = %.1f images/s, %d workers, %d photos",
             samples, Double(samples) / ours, ours, workers, files.count))
if !skipPython {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = [python, "augment_bench.py", "--images", imagesDirectory, "--workers", "\(workers)",
                       "--samples", "\(samples)", "--json"]
  let pipe = Pipe()
  process.standardOutput = pipe
  try process.run()
  let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  let line = output.split(separator: "\n").last { $0.hasPrefix("{") } ?? "{}"
  let theirs = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["images_per_s"] as? Double
  if let theirs {
    print(String(format: "PIL/torch: %.1f images/s; ratio ours / PIL = %.2fx (target >= 1x)", theirs, ours / theirs))
  } else {
    print("PIL/torch side failed:\n\(output)")
  }
}
