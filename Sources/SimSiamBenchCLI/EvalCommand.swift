// `simsiam-bench eval coco`: score a COCO results file against its ground truth exactly as pycocotools' COCOeval
// does; the work is in Evaluation/COCO (COCOEvaluator).
import ArgumentParser
import Evaluation
import Foundation
import Support
import Tensors

struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score detection or segmentation results files as the reference evaluators do.",
    subcommands: [EvalCOCO.self])
}

struct EvalCOCO: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coco",
    abstract: "COCO box or mask AP of a results json, as pycocotools' COCOeval computes it.",
    discussion: """
      Prints the 12 summary lines in pycocotools' own wording (so the two outputs diff cleanly). --gt is an \
      instances json (images, categories, annotations); --dt is a list of {image_id, category_id, score, bbox | \
      segmentation}, prepared as COCO.loadRes does (the first entry decides box or mask results).
      """)

  @Option(help: "The ground-truth instances json.") var gt: String
  @Option(help: "The detections (results) json.") var dt: String
  @Option(help: "bbox (box IoU) or segm (mask IoU).") var iouType: String = "bbox"
  @Option(help: "Also write the 12 stats at full precision to this json file.") var json: String?
  @Option(help: "Worker threads: 1…\(Threads.maximum); 0 uses all active cores.") var threads: Int = 0

  func validate() throws {
    guard COCOIoUType(rawValue: iouType) != nil else {
      throw ValidationError("--iou-type must be bbox or segm, got '\(iouType)'.")
    }
    try validateThreads(threads)
  }

  /// Evaluates and writes --json; returns the 12 lines.
  func evaluate() throws -> [String] {
    try Threads.start(threads)
    let truth = try COCOGroundTruth.load(URL(fileURLWithPath: gt))
    let detections = try COCODetections.load(URL(fileURLWithPath: dt), groundTruth: truth)
    let result = try COCOEvaluator.evaluate(groundTruth: truth, detections: detections,
                                            iouType: COCOIoUType(rawValue: iouType)!)
    if let json { try AtomicFile.write(COCOSummary.json(result), to: URL(fileURLWithPath: json)) }
    return COCOSummary.lines(result)
  }

  func run() throws {
    print(try evaluate().joined(separator: "\n"))
  }
}
