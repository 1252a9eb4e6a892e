// Resume support: every finished unit of an SVM protocol (one CV fold's AP, a class's final test AP, a low-shot
// (k, sample) group's APs) is appended to a journal file and fsync'ed; a rerun with the same key skips what is there.
import Datasets
import Dispatch
import Foundation
import Support
import Synchronization

/// An append-only record of finished units, one line each: `<unit>\t<v1>,<v2>,…`. Values are written with
/// Swift's shortest round-tripping Double description, so a resumed run reads back exactly what was computed.
/// A torn last line (a crash mid-write) does not parse and is ignored.
public final class SVMJournal: Sendable {
  public let url: URL
  /// The recorded units; appends to `handle` happen while holding it, so lines never interleave.
  private let entries: Mutex<[String: [Double]]>
  private let handle: FileHandle

  /// The journal for `key` in `directory` (created if needed): `svm-<first 16 hex of SHA-256(key)>.journal`.
  /// The key names the features (checkpoint, dataset, layer, transform, pooling) and the protocol variant.
  public init(directory: URL, key: String) throws {
    let name = "svm-" + String(SHA256.hexDigest(of: Array(key.utf8)).prefix(16)) + ".journal"
    url = directory.appendingPathComponent(name)
    var entries: [String: [Double]] = [:]
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      if !FileManager.default.fileExists(atPath: url.path) {
        // The first line states the key, for people reading the work directory.
        try Data("#\t\(key)\n".utf8).write(to: url)
      }
      let text = try String(contentsOf: url, encoding: .utf8)
      for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 2, fields[0] != "#" else { continue }
        let values = fields[1].split(separator: ",").compactMap { Double($0) }
        guard values.count == fields[1].split(separator: ",").count, !values.isEmpty else { continue }
        entries[String(fields[0])] = values
      }
      let handle = try FileHandle(forWritingTo: url)
      try handle.seekToEnd()
      // A torn last line must not glue onto the next record.
      if !text.isEmpty && !text.hasSuffix("\n") { try handle.write(contentsOf: Data("\n".utf8)) }
      self.handle = handle
    } catch let error as SVMError {
      throw error
    } catch {
      throw SVMError.journal(path: url.path, reason: error.localizedDescription)
    }
    self.entries = Mutex(entries)
  }

  deinit { try? handle.close() }

  /// The recorded values of `unit`, or nil.
  public func values(_ unit: String) -> [Double]? { entries.withLock { $0[unit] } }

  public var count: Int { entries.withLock { $0.count } }

  /// Appends `unit` and fsyncs before returning.
  public func record(_ unit: String, _ values: [Double]) throws {
    precondition(!unit.contains("\t") && !unit.contains("\n") && !values.isEmpty,
                 "A journal unit is one line with values, got '\(unit)' with \(values.count) values.")
    let line = unit + "\t" + values.map { "\($0)" }.joined(separator: ",") + "\n"
    try entries.withLock { entries in
      do {
        try handle.write(contentsOf: Data(line.utf8))
        try handle.synchronize()
      } catch {
        throw SVMError.journal(path: url.path, reason: "cannot append: \(error.localizedDescription)")
      }
      entries[unit] = values
    }
  }
}
