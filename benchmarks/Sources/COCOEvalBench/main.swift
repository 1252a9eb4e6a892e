// COCO box evaluation on a val2017-sized synthetic set (5,000 images, ~36.5k ground truths, 100 detections each),
// ours (Evaluation/COCO, all cores) against pycocotools' COCOeval on the same files (benchmarks/coco_eval_bench.py),
// one after the other in the same run. Checks that the 12 stats agree (≤ 1e-12) before it reports the times.
//
//   swift build -c release --product COCOEvalBench && .build/release/COCOEvalBench [--out /tmp/coco-bench]
//     [--images 5000] [--threads 0] [--iou-type bbox] [--python python3] [--skip-pycocotools]
import Evaluation
import Foundation
import Tensors

struct Options {
  var out = "/tmp/coco-bench"
  var images = 5000
  var threads = 0
  var iouType = COCOIoUType.bbox
  var python = "python3"
  var skipPycocotools = false

  init(_ arguments: [String]) {
    var iterator = arguments.dropFirst().makeIterator()
    while let argument = iterator.next() {
      func value() -> String { iterator.next() ?? "" }
      switch argument {
      case "--out": out = value()
      case "--images": images = Int(value())!
      case "--threads": threads = Int(value())!
      case "--iou-type": iouType = COCOIoUType(rawValue: value())!
      case "--python": python = value()
      case "--skip-pycocotools": skipPycocotools = true
      default: fatalError("unknown option \(argument)")
      }
    }
  }
}

/// Runs the python side and returns its stdout.
func runPython(_ python: String, _ arguments: [String]) -> Data {
  let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("coco_eval_bench.py").path
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = [python, script] + arguments
  let pipe = Pipe()
  process.standardOutput = pipe
  do { try process.run() } catch { fatalError("cannot run \(python) \(script): \(error)") }
  let output = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  guard process.terminationStatus == 0 else { fatalError("\(script) \(arguments) failed") }
  return output
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  try body()
  return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let options = Options(CommandLine.arguments)
Threads.configure(options.threads)
let folder = URL(fileURLWithPath: options.out)
if !FileManager.default.fileExists(atPath: folder.appendingPathComponent("dt.json").path) {
  print("making the synthetic set in \(folder.path) …")
  FileHandle.standardOutput.write(runPython(options.python, ["--make", folder.path, "--images", "\(options.images)"]))
}

var truth: COCOGroundTruth!
var detections: COCODetections!
var result: COCOEvaluationResult!
let loadTime = try seconds {
  truth = try COCOGroundTruth.load(folder.appendingPathComponent("gt.json"))
  detections = try COCODetections.load(folder.appendingPathComponent("dt.json"), groundTruth: truth)
}
let evaluateTime = try seconds {
  result = try COCOEvaluator.evaluate(groundTruth: truth, detections: detections, iouType: options.iouType)
}
let ours = result.stats
print(String(format: "ours (%d threads): load %.2f s, evaluate + accumulate + summarize %.2f s, total %.2f s",
             Threads.count, loadTime, evaluateTime, loadTime + evaluateTime))
print(COCOSummary.lines(result).joined(separator: "\n"))

if !options.skipPycocotools {
  struct PythonReport: Decodable { var seconds: [String: Double]; var stats: [Double] }
  let report = try JSONDecoder().decode(
    PythonReport.self, from: runPython(options.python, ["--eval", folder.path, "--iou-type", options.iouType.rawValue]))
  let load = report.seconds["load"] ?? 0
  let work = (report.seconds["evaluate"] ?? 0) + (report.seconds["accumulate"] ?? 0)
  print(String(format: "pycocotools: load %.2f s, evaluate %.2f s, accumulate + summarize %.2f s, total %.2f s",
               load, report.seconds["evaluate"] ?? 0, report.seconds["accumulate"] ?? 0, load + work))
  let worst = zip(ours, report.stats).map { abs($0 - $1) }.max() ?? .infinity
  print(String(format: "largest stats difference: %.3g (%@)", worst, worst <= 1e-12 ? "agree" : "DISAGREE"))
  print(String(format: "speed-up: evaluation %.1f×, including loading %.1f×", work / evaluateTime,
               (load + work) / (loadTime + evaluateTime)))
  if worst > 1e-12 { exit(1) }
}
