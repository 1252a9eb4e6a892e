// What a run's config departs from: every key that differs from the reference protocol (COCO2017, R50-FPN, 1x)
// becomes a facet of the stored protocol variant, so the scene miniature (smaller images, narrower heads, fewer ROIs
// and epochs) can never be read as the published protocol.
import Foundation
import Support

extension MaskRCNNBenchmarkConfig {
  /// Where the data is (recorded with the run as its dataset path and fingerprints), not how it is used.
  static let datasetKeys: Set<String> = ["data.root", "data.train_json", "data.train_images", "data.test_json",
                                         "data.test_images", "seed"]

  /// The protocol variant: `key=value` for every config key that differs from the reference (the data's location
  /// and the seed excepted: they are recorded with the run anyway), the dataset when its categories are not COCO's 80, the
  /// backbone's stem when P2 is not at stride 4, and `random-init` for the baseline.
  func variant(isRandomInit: Bool, isCOCO: Bool, pyramidStrides: [Int]) -> ProtocolVariant {
    var variant = ProtocolVariant()
    for (key, value) in configDepartures(self, from: MaskRCNNBenchmarkConfig(), except: Self.datasetKeys) {
      variant[key] = value
    }
    if !isCOCO { variant["dataset"] = "coco-layout(other-classes)" }
    if pyramidStrides != [4, 8, 16, 32, 64] {
      variant["model.pyramid_strides"] = pyramidStrides.map(String.init).joined(separator: ",")
    }
    if isRandomInit { variant.flag("random-init") }
    return variant
  }
}
