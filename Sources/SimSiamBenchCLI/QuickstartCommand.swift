// `simsiam-bench quickstart`: the README's first command (`make demo`). On the embedded default it pretrains with
// the quick config, evaluates the pretrained and the random-initialised backbone with every protocol we have, stores
// everything, and prints the tables, a compare of the two and the path of the HTML report. The protocol steps are
// the library calls of `QuickstartPlan` (Sources/Protocols/Quickstart); the data and report steps are the ordinary
// commands. A re-run reuses what is done.
import Support
import ArgumentParser
import Foundation
import Protocols
import Training

struct Quickstart: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The whole pipeline on the embedded default: pretrain, evaluate pretrained vs random init, report.",
    discussion: """
      Steps (each printed as the command a user would type): the engine self-test; `pretrain` with the quick \
      Fashion-MNIST config (configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml); the same network at its \
      initial weights saved as the random-init baseline; `data make-scenes` (a small VOC2007-layout devkit of \
      Fashion-MNIST scenes); for both backbones `run voc-svm --low-shot` on the scenes, `run linear --head mhead \
      --cache-features` and `run knn` on Fashion-MNIST (with --all also the `run fcn`, `run faster-rcnn` and \
      `run mask-rcnn` miniatures on the scenes); then `report markdown`, `compare` (pretrained against random init) and \
      `report html`. Everything lands in --work-dir and the results database. A re-run skips the finished \
      pretraining and reuses checkpoints, feature caches and finished SVM units. About 15 minutes on \
      2 cores.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "Where every step keeps its files.")
  var workDir: String = "work_dirs/quickstart"

  @Option(help: "The HTML report to write.")
  var report: String = "results/report.html"

  @Option(help: "Trainval and test scenes (each) of the default scene devkit the --all miniatures use.")
  var scenes: Int = 200

  @Option(help: "Trainval and test scenes (each) of the scene SVMs' devkit.")
  var svmScenes: Int = 500

  @Option(help: ArgumentHelp("Side of the scene SVMs' scenes and of their feature input (no rescaling: the items "
                             + "stay at the 28–35 px the quick backbone, trained at 32, knows)."))
  var sceneImageSize: Int = 64

  @Option(help: "Wall-clock cap of the pretraining in minutes (the quick config's own cap is 10).")
  var pretrainMinutes: Double = 10

  @Flag(help: ArgumentHelp("Also the longer protocols on the scenes for both backbones: `run fcn` (the FCN "
                            + "miniature, about 8 minutes on 2 idle cores), `run faster-rcnn` (the Faster R-CNN C4 "
                            + "miniature) and `run mask-rcnn` (the Mask R-CNN FPN miniature)."))
  var all = false

  func validate() throws {
    guard scenes >= 20 else { throw ValidationError("--scenes must be at least 20, got \(scenes).") }
    guard svmScenes >= 20 else { throw ValidationError("--svm-scenes must be at least 20, got \(svmScenes).") }
    guard (48...1024).contains(sceneImageSize) else {
      throw ValidationError("--scene-image-size must be in 48…1024 (the scenes hold items of up to 35 px), got "
                              + "\(sceneImageSize).")
    }
    guard pretrainMinutes > 0 && pretrainMinutes.isFinite else {
      throw ValidationError("--pretrain-minutes must be positive, got \(pretrainMinutes).")
    }
  }

  /// The protocol requests this invocation runs.
  var plan: QuickstartPlan {
    QuickstartPlan(workDirectory: URL(fileURLWithPath: workDir), database: common.db, seed: common.seed,
                   pretrainMinutes: pretrainMinutes, sceneImageSize: sceneImageSize)
  }

  func run() throws {
    try common.configureThreads()
    let started = Date()
    let plan = self.plan
    try FileManager.default.createDirectory(at: plan.workDirectory, withIntermediateDirectories: true)
    let threads = ["--threads", String(common.threads)]

    try command("engine self-test", ["selftest"] + threads + (common.seed.map { ["--seed", String($0)] } ?? []))

    // 1. Pretraining, skipped when a previous quickstart finished it.
    let finishedMarker = plan.pretrainDirectory.appendingPathComponent("quickstart-finished")
    let pretrainRequest = try plan.pretrainRequest()
    let pretrained: URL
    if let recorded = try? String(contentsOf: finishedMarker, encoding: .utf8),
       FileManager.default.fileExists(atPath: recorded) {
      pretrained = URL(fileURLWithPath: recorded)
      say("pretraining: reusing \(recorded) (delete \(finishedMarker.path) to train again)")
    } else {
      try step("pretraining (about 5 minutes on 2 idle cores)",
               "pretrain --work-dir \(plan.pretrainDirectory.path) --resume auto "
                 + "--set schedule.max_minutes=\(pretrainMinutes) --set monitor.knn_at_end=false" + seedText) {
        _ = try PretrainProtocol.run(pretrainRequest)
      }
      guard let latest = Pretrainer.latestCheckpoint(in: plan.pretrainDirectory) else {
        throw ValidationError("Pretraining wrote no checkpoint in \(plan.pretrainDirectory.path).")
      }
      pretrained = latest.resolvingSymlinksInPath()
      try AtomicFile.write(Data(pretrained.path.utf8), to: finishedMarker)
    }

    // 2. The random-init baseline: the pretraining's own initial weights (same config, same seed).
    let random = plan.randomInitCheckpoint
    if !FileManager.default.fileExists(atPath: random.path) {
      try PretrainProtocol.writeInitialWeights(of: pretrainRequest.config, name: pretrainRequest.configName, to: random)
      say("random init: wrote the quick config's initial weights (seed \(pretrainRequest.config.seed)) to "
            + random.path)
    }

    // 3. The scene VOC devkits: the SVMs' (items at the backbone's scale), and with --all the default one.
    if !FileManager.default.fileExists(atPath: plan.svmSceneDevkit.appendingPathComponent("ImageSets/Main").path) {
      try command("scene VOC devkit for the SVMs (\(svmScenes) trainval + \(svmScenes) test)",
                  ["data", "make-scenes", "--out", plan.svmSceneDirectory.path]
                    + plan.svmSceneArguments(scenes: svmScenes) + threads)
    }
    if all && !FileManager.default.fileExists(atPath: plan.sceneDevkit.appendingPathComponent("ImageSets/Main").path) {
      try command("scene VOC devkit (\(scenes) trainval + \(scenes) test)",
                  ["data", "make-scenes", "--out", plan.sceneDirectory.path, "--train", String(scenes),
                   "--test", String(scenes)] + threads)
    }

    // 4. Every evaluation, for both backbones.
    for (label, checkpoint, slug) in [(QuickstartPlan.pretrainedLabel, pretrained.path, "pretrained"),
                                      (QuickstartPlan.randomLabel, random.path, "random-init")] {
      let svm = plan.sceneSVMRequest(checkpoint: checkpoint, label: label, slug: slug)
      try step("VOC07 SVMs and low-shot SVMs on the scenes: \(label)",
               "run voc-svm --checkpoint \(checkpoint) --data \(plan.svmSceneDevkit.path) --low-shot --image-size "
                 + "\(sceneImageSize) --label \(Self.shellQuoted(label))" + seedText) {
        let result = try VOCSVMProtocol.run(svm)
        print(result.table.text())
      }
      let linear = try plan.linearRequest(checkpoint: checkpoint, label: label, slug: slug)
      try step("multi-head linear probe on Fashion-MNIST (cached features): \(label)",
               "run linear --head mhead --checkpoint \(checkpoint) --cache-features --label \(Self.shellQuoted(label))"
                 + seedText) {
        print(try LinearProbeProtocol.run(linear).table.markdown(), terminator: "")
      }
      let knn = try plan.knnRequest(checkpoint: checkpoint, label: label, slug: slug)
      try step("weighted kNN on Fashion-MNIST (10,000-image bank): \(label)",
               "run knn --checkpoint \(checkpoint) --set data.limit=10000 --label \(Self.shellQuoted(label))"
                 + seedText) {
        print(try KNNProtocol.run(knn).table.markdown(), terminator: "")
      }
      guard all else { continue }
      let fcn = try plan.sceneFCNRequest(checkpoint: checkpoint, label: label, slug: slug)
      try step("FCN segmentation fine-tuned on the scenes (the miniature of fcn_r50-d8_512x512_20k_voc12aug): \(label)",
               "run fcn --checkpoint \(checkpoint) --data \(plan.sceneDevkit.path) --resume --label "
                 + "\(Self.shellQuoted(label))" + seedText) {
        print(try FCNProtocol.run(fcn).table.markdown(), terminator: "")
      }
      let detection = try plan.sceneDetectionRequest(checkpoint: checkpoint, label: label, slug: slug)
      try step("Faster R-CNN C4 fine-tuned on the scenes (the miniature of faster_rcnn_r50_c4_mstrain_24k_voc0712): "
                 + label,
               "run faster-rcnn --checkpoint \(checkpoint) --data \(plan.sceneDevkit.path) --resume --label "
                 + "\(Self.shellQuoted(label))" + seedText) {
        print(try FasterRCNNProtocol.run(detection).table.markdown(), terminator: "")
      }
      let instances = try plan.sceneInstanceSegmentationRequest(checkpoint: checkpoint, label: label, slug: slug)
      try step("Mask R-CNN FPN fine-tuned on the scenes (the miniature of mask_rcnn_r50_fpn_mstrain_1x_coco): "
                 + label,
               "run mask-rcnn --checkpoint \(checkpoint) --data \(plan.sceneDirectory.path) --resume --label "
                 + "\(Self.shellQuoted(label))" + seedText) {
        print(try MaskRCNNProtocol.run(instances).table.markdown(), terminator: "")
      }
    }

    // 5. Tables, the comparison and the HTML report.
    try command("tables", ["report", "markdown", "--db", common.db])
    do {
      try command("pretrained vs random init (every cell: is the pretrained backbone ahead beyond the noise?)",
                  QuickstartPlan.compareArguments(database: common.db))
    } catch {
      // Honest either way: the table shows where random init is ahead beyond the noise; the quickstart has worked.
      say("compare: \(error)")
    }
    try command("HTML report", ["report", "html", "--output", report, "--db", common.db])
    say(String(format: "quickstart finished in %@; results in %@, report %@",
               Console.duration(Date().timeIntervalSince(started)), common.db, report))
  }

  private var seedText: String { common.seed.map { " --seed \($0)" } ?? "" }

  /// Runs a protocol step (a library call), after printing the command a user would type for it.
  private func step(_ title: String, _ commandLine: String, _ body: () throws -> Void) throws {
    say("\(title)\n  $ simsiam-bench \(commandLine)")
    let started = Date()
    try body()
    print("\n(\(Console.duration(Date().timeIntervalSince(started))) for: \(title))")
  }

  /// Runs one of the data or report commands with `arguments`, after printing it.
  private func command(_ title: String, _ arguments: [String]) throws {
    try step(title, arguments.map(Self.shellQuoted).joined(separator: " ")) {
      var command = try SimSiamBench.parseAsRoot(arguments)
      try command.run()
    }
  }

  private func say(_ text: String) {
    Console.printLine("\n== quickstart: \(text)")
  }

  static func shellQuoted(_ argument: String) -> String {
    argument.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=,:".contains($0) }) ? argument : "'\(argument)'"
  }
}
