// What a run's config departs from: every key that differs from the protocol it stands for becomes a facet of the
// stored protocol variant, so a miniature (smaller crops, fewer iterations, narrower heads) can never be read as
// the published protocol.
import Datasets
import Foundation
import Support

extension FCNBenchmarkConfig {
  /// The reference protocol of a data layout: Cityscapes' config for Cityscapes, voc12aug's for everything else.
  static func reference(for layout: SegmentationDataset.Layout) -> FCNBenchmarkConfig {
    guard layout == .cityscapes,
          let config = try? FCNBenchmarkConfig.load(yaml: FCNPresets.cityscapes.yaml, source: "cityscapes")
    else { return FCNBenchmarkConfig() }
    return config
  }

  /// The protocol variant: `key=value` for every config key that differs from the layout's reference protocol
  /// (data.path and seed excepted: they are recorded with the run anyway), the data layout when it is not the
  /// protocol's dataset, and `random-init` for the baseline.
  func variant(isRandomInit: Bool, layout: SegmentationDataset.Layout) -> ProtocolVariant {
    var variant = ProtocolVariant()
    for (key, value) in configDepartures(self, from: Self.reference(for: layout), except: ["data.path", "seed"]) {
      variant[key] = value
    }
    switch layout {
    case .voc2012, .cityscapes: break
    case .vocDevkit: variant["dataset"] = "voc-devkit(SegmentationClass)"
    }
    if isRandomInit { variant.flag("random-init") }
    return variant
  }
}
