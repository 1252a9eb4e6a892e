// `simsiam-bench run fcn`: options → `FCNRequest`; the protocol lives in Sources/Protocols/FCN.
import ArgumentParser
import Foundation
import Protocols

struct RunFCN: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fcn",
    abstract: "FCN-D8 semantic segmentation fine-tuned end to end from a checkpoint, scored by mIoU (mmseg).",
    discussion: """
      MMSegmentation's FCN benchmark (fcn_r50-d8_512x512_20k_voc12aug): the backbone with strides (1,2,1,1) and \
      dilations (1,1,2,4), FCNHead on layer4 and an auxiliary FCNHead on layer3 (weight 0.4), SGD 0.01 with poly \
      decay over 20k iterations on mmseg's pipeline (Resize 0.5–2.0, RandomCrop 512 with cat_max_ratio 0.75, flip, \
      PhotoMetricDistortion), whole-image inference and mmseg's mIoU. The config follows --data: a VOC2012 folder \
      (JPEGImages, SegmentationClass[Aug], ImageSets/Segmentation) runs voc12aug, a Cityscapes folder \
      (leftImg8bit, gtFine) runs the Cityscapes config, and a scene devkit from `data make-scenes` runs the \
      miniature for the quick backbone (a few minutes on 2 cores). Checkpoints every schedule.checkpoint_interval \
      iterations; --resume continues bit-exactly. Every scale change is recorded as the run's protocol variant.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint to fine-tune (.safetensors or .pth, any layout `checkpoint inspect` knows).")
  var checkpoint: String

  @Option(help: "The dataset folder (sets data.path): VOC2012, Cityscapes, or a `data make-scenes` devkit.")
  var data: String?

  @Option(help: "A YAML config (configs/benchmarks/mmsegmentation/…); default: chosen from the data folder.")
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (dotted, repeatable).",
                                                      valueName: "key=value"))
  var overrides: [String] = []

  @Option(help: "Training iterations (sets schedule.iterations).")
  var iterations: Int?

  @Flag(help: "Fine-tune the checkpoint's architecture from random initialisation instead of its weights (baseline).")
  var randomInit = false

  @Flag(help: "Continue from the work directory's latest iter_<N>.safetensors.")
  var resume = false

  @Option(help: "Stop after this iteration of the schedule (checkpoint written, no score); --resume continues.")
  var stopAfter: Int?

  @Option(help: "Where checkpoints and log.txt go (default: work_dirs/<config name>/<label>).")
  var workDir: String?

  @Option(help: "The name reports show for this checkpoint (default: the checkpoint file name).")
  var label: String?

  @Option(help: "Seconds between progress lines when the output is not a terminal.")
  var logInterval: Double = 10

  @OptionGroup var layoutOptions: LayoutOptions

  /// The request these options ask for.
  func request() throws -> FCNRequest {
    let shortcuts = iterations.map { ["schedule.iterations=\($0)"] } ?? []
    let (config, name) = try FCNRequest.config(file: config, data: data, overrides: shortcuts + overrides,
                                               seed: common.seed)
    var request = FCNRequest(
      backbone: BackboneRequest(checkpoint: checkpoint, layout: layoutOptions.layout, prefix: layoutOptions.prefix,
                                randomInit: randomInit),
      config: config, configName: name, configFile: self.config, label: label,
      workDirectory: workDir.map { URL(fileURLWithPath: $0) }, resume: resume, database: common.db)
    request.logInterval = logInterval
    request.stopAfter = stopAfter
    return request
  }

  func validate() throws {
    if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be ≥ 1, got \(stopAfter).") }
    if let iterations, iterations < 1 { throw ValidationError("--iterations must be ≥ 1, got \(iterations).") }
  }

  func run() throws {
    try common.configureThreads()
    let result = try FCNProtocol.run(try request())
    print("")
    print(result.table.markdown(), terminator: "")
    print("")
    print(result.perClassTable.markdown(), terminator: "")
  }
}
