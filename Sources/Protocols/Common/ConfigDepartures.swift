// What a fine-tuning run's config departs from: every key that differs from the protocol it stands for becomes a
// facet of the stored protocol variant, so a miniature (smaller images, fewer iterations, narrower heads) can never
// be read as the published protocol (`run fcn`, `run faster-rcnn`).
import Foundation

/// The keys (dotted, arrays as comma-separated lists) whose values in `config` differ from `reference`, with
/// `config`'s value; keys in `except` (recorded with the run anyway, such as the data path and the seed) are skipped.
func configDepartures<T: Encodable>(_ config: T, from reference: T, except: Set<String>) -> [String: String] {
  let mine = flattenedJSON(config), theirs = flattenedJSON(reference)
  return mine.filter { key, value in !except.contains(key) && theirs[key] != value }
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
