// `simsiam-bench run faster-rcnn`: options → `FasterRCNNRequest`; the protocol lives in Sources/Protocols/FasterRCNN.
import ArgumentParser
import Foundation
import Protocols

struct RunFasterRCNN: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "faster-rcnn",
    abstract: "Faster R-CNN C4 fine-tuned end to end from a checkpoint on VOC07+12, scored by VOC AP (mmdet, detectron2).",
    discussion: """
      MMSelfSup's detection benchmark (faster_rcnn_r50_c4_mstrain_24k_voc0712): the ResNet's stem..layer3 as the C4 \
      trunk, an RPN on it, RoIAlign 14×14 → layer4 (from the checkpoint) + an extra BN → box classifier and \
      regressor; everything trained with batch statistics, SGD 0.02 with a 100-iteration warm-up and steps at 18k \
      and 22k over 24k iterations of 16 images, short side 480…800 (long ≤ 1333), flip. Give --data once per devkit \
      year folder (JPEGImages, Annotations, ImageSets/Main): VOC2007 and VOC2012 are trained on together, and the \
      first one's test split is scored — AP50 by mmdet's eval_map (11-point, the seed's column), AP and AP75 by \
      detectron2's VOC evaluator (the paper's Table 5). A scene devkit from `data make-scenes` runs the miniature for \
      the quick backbone (minutes on 2 cores). Checkpoints every schedule.checkpoint_interval iterations; --resume \
      continues bit-exactly. Every scale change is recorded as the run's protocol variant.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint to fine-tune (.safetensors or .pth, any layout `checkpoint inspect` knows).")
  var checkpoint: String

  @Option(help: "A VOC devkit year folder (repeat for VOC2007 and VOC2012; sets data.paths), or a scene devkit.")
  var data: [String] = []

  @OptionGroup var fineTuning: FineTuningOptions

  @OptionGroup var layoutOptions: LayoutOptions

  /// The request these options ask for.
  func request() throws -> FasterRCNNRequest {
    let (config, name) = try FasterRCNNRequest.config(file: fineTuning.config, data: data,
                                                      overrides: fineTuning.allOverrides, seed: common.seed)
    var request = FasterRCNNRequest(
      backbone: BackboneRequest(checkpoint: checkpoint, layout: layoutOptions.layout, prefix: layoutOptions.prefix,
                                randomInit: fineTuning.randomInit),
      config: config, configName: name, configFile: fineTuning.config, label: fineTuning.label,
      workDirectory: fineTuning.workDirectory, resume: fineTuning.resume, database: common.db)
    request.logInterval = fineTuning.logInterval
    request.stopAfter = fineTuning.stopAfter
    return request
  }

  func run() throws {
    try common.configureThreads()
    let result = try FasterRCNNProtocol.run(try request())
    print("")
    print(result.table.markdown(), terminator: "")
    print("")
    print(result.perClassTable.markdown(), terminator: "")
  }
}
