// The Faster R-CNN C4 head's two irregular ops, ours against the torch reference implementations of
// scripts/reference/make_detection_fixtures.py (torchvision's compiled ops do not load on the project machine):
// - ROIAlign 14×14, aligned, sampling ratio 0, 512 rois on a 1024-channel stride-16 map of a 600×800 image
//   ([1, 38, 50, 1024]), forward and forward + backward;
// - NMS (IoU 0.7) of 12000 boxes (the RPN's pre-NMS top-k at training time).
// Same sizes and distributions on both sides (rois: x1, y1 uniform in [0, 700] × [0, 500], sides 16…316 px;
// boxes: corners uniform in [0, 800]², sides 8…300 px; scores uniform). Times are the best of 3 runs, in ms.
//
//   swift build -c release && .build/release/DetectionBench [--threads 2] [--python python3] [--skip-torch]
import Dispatch
import Foundation
import Layers
import Tensors

var threads = 2, python = "python3", skipTorch = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
  switch argument {
  case "--threads": threads = Int(arguments.next() ?? "") ?? 2
  case "--python": python = arguments.next() ?? python
  case "--skip-torch": skipTorch = true
  default: fatalError("unknown option \(argument)")
  }
}
Threads.configure(threads)

func bestMilliseconds(runs: Int = 3, _ body: () -> Void) -> Double {
  var best = Double.infinity
  for _ in 0..<runs {
    let start = DispatchTime.now()
    body()
    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
  }
  return best
}

var rng = SplitMix64(seed: 0)
let features = Tensor.randomNormal([1, 38, 50, 1024], using: &rng)
let rois = Tensor(shape: [512, 5], scalars: (0..<512).flatMap { _ -> [Float] in
  let (x, y) = (700 * rng.nextUniform(), 500 * rng.nextUniform())
  let (w, h) = (16 + 300 * rng.nextUniform(), 16 + 300 * rng.nextUniform())
  return [0, x, y, x + w, y + h]
})
let roiAlign = ROIAlign(outputHeight: 14, outputWidth: 14, spatialScale: 1.0 / 16)
var pooled = roiAlign.forward(features: features, rois: rois)
let forward = bestMilliseconds { pooled = roiAlign.forward(features: features, rois: rois) }
let upstream = Tensor.randomNormal(pooled.shape, using: &rng)
let forwardBackward = bestMilliseconds {
  pooled = roiAlign.forward(features: features, rois: rois)
  _ = roiAlign.backward(outputGradient: upstream, rois: rois, featureShape: features.shape)
}
let boxes = Tensor(shape: [12000, 4], scalars: (0..<12000).flatMap { _ -> [Float] in
  let (x, y) = (800 * rng.nextUniform(), 800 * rng.nextUniform())
  let (w, h) = (8 + 292 * rng.nextUniform(), 8 + 292 * rng.nextUniform())
  return [x, y, x + w, y + h]
})
let scores = (0..<12000).map { _ in rng.nextUniform() }
var kept = [Int]()
let nmsTime = bestMilliseconds { kept = nonMaximumSuppression(boxes: boxes, scores: scores, iouThreshold: 0.7) }
let nmsTop2000 = bestMilliseconds {
  _ = nonMaximumSuppression(boxes: boxes, scores: scores, iouThreshold: 0.7, limit: 2000)
}

var torch: [String: Double] = [:]
if !skipTorch {
  let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
    "../../../scripts/reference/make_detection_fixtures.py").standardized.path
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = [python, script, "--bench"]
  process.environment = ProcessInfo.processInfo.environment.merging(["THREADS": "\(threads)"]) { $1 }
  let pipe = Pipe()
  process.standardOutput = pipe
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  if let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
     let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double] {
    torch = parsed
  }
}

@MainActor func row(_ name: String, _ ours: Double, _ key: String) {
  if let reference = torch[key] {
    print(String(format: "| %@ | %.1f | %.1f | %.2f× |", name, ours, reference, reference / ours))
  } else {
    print(String(format: "| %@ | %.1f | – | – |", name, ours))
  }
}
print("threads \(threads); NMS keeps \(kept.count) of 12000")
print("| case | ours ms | torch reference ms | speed-up |")
print("|---|---|---|---|")
row("ROIAlign 512×14×14, C 1024, forward", forward, "roi_align_forward_ms")
row("ROIAlign forward + backward", forwardBackward, "roi_align_forward_backward_ms")
row("NMS 12000 boxes @ 0.7", nmsTime, "nms_12000_ms")
print(String(format: "| NMS 12000 @ 0.7, first 2000 kept (`limit:`) | %.1f | | |", nmsTop2000))
