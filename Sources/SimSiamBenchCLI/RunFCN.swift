// `simsiam-bench run fcn`: options → `FCNRequest`; the protocol lives in Sources/Protocols/FCN.
import ArgumentParser
import Distributed
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
      iterations; --resume continues bit-exactly. Every scale change is recorded as the run's protocol variant.       Under `mpirun -np N` data.batch_size is the global batch (N must divide it), with SyncBN (README "Scaling out").
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint to fine-tune (.safetensors or .pth, any layout `checkpoint inspect` knows).")
  var checkpoint: String

  @Option(help: "The dataset folder (sets data.path): VOC2012, Cityscapes, or a `data make-scenes` devkit.")
  var data: String?

  @OptionGroup var fineTuning: FineTuningOptions

  @OptionGroup var layoutOptions: LayoutOptions

  /// The request these options ask for.
  func request() throws -> FCNRequest {
    let (config, name) = try FCNRequest.config(file: fineTuning.config, data: data, overrides: fineTuning.allOverrides,
                                               seed: common.seed)
    var request = FCNRequest(
      backbone: BackboneRequest(checkpoint: checkpoint, layout: layoutOptions.layout, prefix: layoutOptions.prefix,
                                randomInit: fineTuning.randomInit),
      config: config, configName: name, configFile: fineTuning.config, label: fineTuning.label,
      workDirectory: fineTuning.workDirectory, resume: fineTuning.resume, database: common.db)
    request.logInterval = fineTuning.logInterval
    request.stopAfter = fineTuning.stopAfter
    return request
  }

  func run() throws {
    try common.runInLaunchedGroup(evaluate)
  }

  /// Under mpirun, rank 0 runs the recorded run and prints the tables; the others train their share silently.
  private func evaluate(in group: any ProcessGroup) throws {
    var request = try request()
    request.processGroup = group
    guard group.isRoot else { return try FCNProtocol.runAsWorker(request) }
    let result = try FCNProtocol.run(request)
    print("")
    print(result.table.markdown(), terminator: "")
    print("")
    print(result.perClassTable.markdown(), terminator: "")
  }
}
