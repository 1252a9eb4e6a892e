// What a run's config departs from: every key that differs from the reference protocol (VOC07+12, R50-C4, 24k
// iterations) becomes a facet of the stored protocol variant, so the scene miniature (smaller images, fewer ROIs and
// iterations) can never be read as the published protocol.
import Foundation
import Support

extension FasterRCNNBenchmarkConfig {
  /// The protocol variant: `key=value` for every config key that differs from the reference (data.paths and seed
  /// excepted: they are recorded with the run anyway), the devkit years when they are not VOC2007 + VOC2012, the
  /// dataset when it is not VOC, and `random-init` for the baseline.
  func variant(isRandomInit: Bool, isVOC: Bool) -> ProtocolVariant {
    var variant = ProtocolVariant()
    for (key, value) in configDepartures(self, from: FasterRCNNBenchmarkConfig(), except: ["data.paths", "seed"]) {
      variant[key] = value
    }
    let years = data.paths.map { URL(fileURLWithPath: $0).lastPathComponent }
    if years != ["VOC2007", "VOC2012"] { variant["data.sets"] = years.joined(separator: "+") }
    if !isVOC { variant["dataset"] = "voc-devkit(\(years.first ?? "unknown"),other-classes)" }
    if isRandomInit { variant.flag("random-init") }
    return variant
  }
}
