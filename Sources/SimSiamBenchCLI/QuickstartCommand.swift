// `simsiam-bench quickstart`: the README's first command (`make demo`). On the embedded default it pretrains with
// the quick config, evaluates the pretrained and the random-initialised backbone with every protocol we have, stores
// everything, and prints the tables, a compare of the two and the path of the HTML report. Each step is one of the
// ordinary commands, run in-process with the arguments a user would type; a re-run reuses what is done.
import ArgumentParser
import Foundation
import Checkpoints
import Models
import Tensors
import Training

struct Quickstart: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The whole pipeline on the embedded default: pretrain, evaluate pretrained vs random init, report.",
    discussion: """
      Steps (each an ordinary command, printed before it runs): the engine self-test; `pretrain` with the quick \
      Fashion-MNIST config (configs/pretrain/simsiam_resnet18_fashion-mnist_quick.yaml); the same network at its \
      initial weights saved as the random-init baseline; `data make-scenes` (a small VOC2007-layout devkit of \
      Fashion-MNIST scenes); for both backbones `run voc-svm --low-shot` on the scenes, `run linear --head mhead \
      --cache-features` and `run knn` on Fashion-MNIST; then `report markdown`, `compare` (pretrained against \
      random init) and `report html`. Everything lands in --work-dir and the results database. A re-run skips the \
      finished pretraining and reuses checkpoints, feature caches and finished SVM units. About 15 minutes on \
      2 cores.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "Where every step keeps its files.")
  var workDir: String = "work_dirs/quickstart"

  @Option(help: "The HTML report to write.")
  var report: String = "results/report.html"

  @Option(help: "Trainval and test scenes of the generated VOC devkit (each).")
  var scenes: Int = 200

  @Option(help: "Input side for the scene SVM features (the quick backbone has a CIFAR stem and was trained at 32).")
  var sceneImageSize: Int = 64

  @Option(help: "Wall-clock cap of the pretraining in minutes (the quick config's own cap is 10).")
  var pretrainMinutes: Double = 10

  /// The label reports show for the pretrained checkpoint, and for its random-init twin.
  static let pretrainedLabel = PretrainConfig.quickDefaultName
  static let randomLabel = PretrainConfig.quickDefaultName + " (random init)"

  func run() throws {
    common.configureThreads()
    let started = Date()
    let work = URL(fileURLWithPath: workDir)
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    let shared = ["--db", common.db, "--threads", String(common.threads)]
    let featureCache = ["--feature-cache", work.appendingPathComponent("feature_cache").path]

    try step("engine self-test", ["selftest", "--threads", String(common.threads)])

    // 1. Pretraining, skipped when a previous quickstart finished it.
    let pretrainDirectory = work.appendingPathComponent("pretrain")
    let finishedMarker = pretrainDirectory.appendingPathComponent("quickstart-finished")
    let pretrained: URL
    if let recorded = try? String(contentsOf: finishedMarker, encoding: .utf8),
       FileManager.default.fileExists(atPath: recorded) {
      pretrained = URL(fileURLWithPath: recorded)
      say("pretraining: reusing \(recorded) (delete \(finishedMarker.path) to train again)")
    } else {
      // The pretraining's own kNN monitor is off: step 4 measures kNN on the full test set for both backbones.
      try step("pretraining (about 5 minutes on 2 idle cores)",
               ["pretrain", "--work-dir", pretrainDirectory.path, "--resume", "auto",
                "--set", "schedule.max_minutes=\(pretrainMinutes)", "--set", "monitor.knn_at_end=false"] + shared)
      guard let latest = Pretrainer.latestCheckpoint(in: pretrainDirectory) else {
        throw ValidationError("Pretraining wrote no checkpoint in \(pretrainDirectory.path).")
      }
      pretrained = latest.resolvingSymlinksInPath()
      try pretrained.path.write(to: finishedMarker, atomically: true, encoding: .utf8)
    }

    // 2. The random-init baseline: the pretraining's own initial weights (same config, same seed).
    let random = work.appendingPathComponent("random_init.safetensors")
    if !FileManager.default.fileExists(atPath: random.path) {
      try Self.writeRandomInit(to: random)
      say("random init: wrote the quick config's initial weights (seed 0) to \(random.path)")
    }

    // 3. The scene VOC devkit.
    let scenesDirectory = work.appendingPathComponent("scenes")
    let voc = scenesDirectory.appendingPathComponent("VOCdevkit/VOC2007")
    if !FileManager.default.fileExists(atPath: voc.appendingPathComponent("ImageSets/Main").path) {
      try step("scene VOC devkit (\(scenes) trainval + \(scenes) test)",
               ["data", "make-scenes", "--out", scenesDirectory.path, "--train", String(scenes),
                "--test", String(scenes), "--threads", String(common.threads)])
    }

    // 4. Every evaluation, for both backbones.
    for (label, checkpoint, slug) in [(Self.pretrainedLabel, pretrained.path, "pretrained"),
                                      (Self.randomLabel, random.path, "random-init")] {
      try step("VOC07 SVMs and low-shot SVMs on the scenes: \(label)",
               ["run", "voc-svm", "--checkpoint", checkpoint, "--data", voc.path, "--low-shot", "--label", label,
                "--image-size", String(sceneImageSize),
                "--work-dir", work.appendingPathComponent("voc-svm/\(slug)").path] + featureCache + shared)
      try step("multi-head linear probe on Fashion-MNIST (cached features): \(label)",
               ["run", "linear", "--head", "mhead", "--checkpoint", checkpoint, "--cache-features", "--label", label,
                "--work-dir", work.appendingPathComponent("linear/\(slug)").path] + featureCache + shared)
      // The bank is the 10,000 training images the linear probe uses (their features are extracted once more for
      // the GAP layer); the queries are all 10,000 test images.
      try step("weighted kNN on Fashion-MNIST (10,000-image bank): \(label)",
               ["run", "knn", "--checkpoint", checkpoint, "--label", label, "--set", "data.limit=10000",
                "--work-dir", work.appendingPathComponent("knn/\(slug)").path] + featureCache + shared)
    }

    // 5. Tables, the comparison and the HTML report.
    try step("tables", ["report", "markdown", "--db", common.db])
    do {
      try step("pretrained vs random init (every cell: is the pretrained backbone ahead?)",
               ["compare", "--label", Self.pretrainedLabel, "--baseline-label", Self.randomLabel,
                "--tolerance", "*=0", "--db", common.db])
    } catch {
      // Honest either way: the table above shows where random init is ahead; the quickstart itself has worked.
      say("compare: \(error)")
    }
    try step("HTML report", ["report", "html", "--output", report, "--db", common.db])
    say(String(format: "quickstart finished in %@; results in %@, report %@",
               ProgressPrinter.duration(Date().timeIntervalSince(started)), common.db, report))
  }

  /// Parses `arguments` as a user's command line and runs it, after printing it.
  private func step(_ title: String, _ arguments: [String]) throws {
    say("\(title)\n  $ simsiam-bench \(arguments.map(Self.shellQuoted).joined(separator: " "))")
    let started = Date()
    var command = try SimSiamBench.parseAsRoot(arguments)
    try command.run()
    print("\n(\(ProgressPrinter.duration(Date().timeIntervalSince(started))) for: \(title))")
  }

  private func say(_ text: String) {
    print("\n== quickstart: \(text)")
    fflush(nil)
  }

  static func shellQuoted(_ argument: String) -> String {
    argument.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=,:".contains($0) }) ? argument : "'\(argument)'"
  }

  /// The quick config's SimSiam at its initial weights (`SplitMix64(seed: config.seed)`, as `Pretrainer` builds it).
  static func writeRandomInit(to url: URL) throws {
    let config = try PretrainConfig.load(yaml: nil, source: "default", overrides: [])
    var generator = SplitMix64(seed: config.seed)
    let model = SimSiam(config.simSiam, using: &generator)
    try SafeTensors(tensors: StateDict.tensors(of: model.namedParameters),
                    metadata: ["author": "simsiam-bench quickstart", "epoch": "0", "seed": String(config.seed),
                               "note": "random initialisation of \(PretrainConfig.quickDefaultName)"])
      .write(to: url)
  }
}
