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
    let mine = flattenedJSON(self), reference = flattenedJSON(Self.reference(for: layout))
    for (key, value) in mine where key != "data.path" && key != "seed" && reference[key] != value {
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

/// `value` encoded as JSON and flattened to dotted keys; arrays become comma-separated lists.
private func flattenedJSON<T: Encodable>(_ value: T) -> [String: String] {
  guard let data = try? JSONEncoder().encode(value),
        let object = try? JSONSerialization.jsonObject(with: data) else { return [:] }
  var flat: [String: String] = [:]
  func visit(_ node: Any, _ path: String) {
    if let dictionary = node as? [String: Any] {
      for (key, child) in dictionary { visit(child, path.isEmpty ? key : path + "." + key) }
    } else if let array = node as? [Any] {
      flat[path] = array.map { "\($0)" }.joined(separator: ",")
    } else {
      flat[path] = "\(node)"
    }
  }
  visit(object, "")
  return flat
}
