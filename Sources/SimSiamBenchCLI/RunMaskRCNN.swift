// `simsiam-bench run mask-rcnn`: options → `MaskRCNNRequest`; the protocol lives in Sources/Protocols/MaskRCNN.
import ArgumentParser
import Foundation
import Protocols

struct RunMaskRCNN: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mask-rcnn",
    abstract: "Mask R-CNN R50-FPN fine-tuned end to end from a checkpoint on COCO2017, scored by COCO box and mask AP.",
    discussion: """
      MMSelfSup's COCO benchmark (mask_rcnn_r50_fpn_mstrain_1x_coco): the ResNet's C2–C5 → FPN 256 with BN (P2–P6), \
      an RPN over the five levels, RoIAlign 7×7 / 14×14 on P2–P5 by mmdet's level rule, the Shared4Conv1FC box head \
      and the 4-conv FCN mask head; everything trained with batch statistics, SGD 0.02 with a 1000-iteration warm-up \
      and ×0.1 after epochs 8 and 11 of 12, 16 images per iteration, short side 640…800 (long ≤ 1333), flip. Give \
      --data a COCO folder (annotations/instances_{train,val}2017.json, train2017/, val2017/): val2017 is scored by \
      pycocotools' COCOeval (box and mask mAP, AP50, AP75 — the seed's COCO2017 columns). A folder from `data \
      make-scenes` runs the miniature for the quick backbone. Checkpoints every schedule.checkpoint_interval \
      iterations; --resume continues bit-exactly. Every scale change is recorded as the run's protocol variant.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint to fine-tune (.safetensors or .pth, any layout `checkpoint inspect` knows).")
  var checkpoint: String

  @Option(help: "A COCO folder (sets data.root), or a `data make-scenes` output folder for the miniature.")
  var data: String?

  @OptionGroup var fineTuning: FineTuningOptions

  @OptionGroup var layoutOptions: LayoutOptions

  /// The request these options ask for.
  func request() throws -> MaskRCNNRequest {
    let (config, name) = try MaskRCNNRequest.config(file: fineTuning.config, data: data,
                                                    overrides: fineTuning.allOverrides, seed: common.seed)
    var request = MaskRCNNRequest(
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
    let result = try MaskRCNNProtocol.run(try request())
    print("")
    print(result.table.markdown(), terminator: "")
  }
}
