// Published numbers with their sources (ReferenceNumbers.swift) and the protocol facets they were measured under.
import Foundation

/// Which number a cell holds: a benchmark's metric at a layer (or head) and k, as `Score` stores it.
public struct CellKey: Hashable, Sendable, Comparable, CustomStringConvertible {
  public var benchmark: String
  public var metric: String
  public var layer: String?
  public var k: Int?

  public init(benchmark: String, metric: String, layer: String? = nil, k: Int? = nil) {
    self.benchmark = benchmark
    self.metric = metric
    self.layer = layer
    self.k = k
  }

  /// A cell of a known benchmark and metric.
  public init(benchmark: BenchmarkID, metric: Metric, layer: String? = nil, k: Int? = nil) {
    self.init(benchmark: benchmark.rawValue, metric: metric.rawValue, layer: layer, k: k)
  }

  init(_ score: Score) { self.init(benchmark: score.benchmark, metric: score.metric, layer: score.layer, k: score.k) }

  /// The benchmark, or nil for a string this version does not know.
  public var benchmarkID: BenchmarkID? { BenchmarkID(rawValue: benchmark) }

  /// The metric, or nil for a string this version does not know.
  public var metricKind: Metric? { Metric(rawValue: metric) }

  /// e.g. `voc07-lowshot-svm mAP feature5 k=8`.
  public var description: String {
    ([benchmark, metric, layer] + [k.map { "k=\($0)" }]).compactMap { $0 }.joined(separator: " ")
  }

  /// Benchmarks in the seed README's table order, then others by name; layers feature1 … feature5, avgpool,
  /// then others by name; then k.
  public static func < (a: CellKey, b: CellKey) -> Bool {
    func rank(_ benchmark: String) -> Int {
      BenchmarkID(rawValue: benchmark).flatMap(BenchmarkID.standard.firstIndex(of:)) ?? BenchmarkID.standard.count
    }
    func rank(layer: String?) -> Int {
      guard let layer else { return -1 }
      return Self.layerOrder.firstIndex(of: layer) ?? Self.layerOrder.count
    }
    if a.benchmark != b.benchmark {
      return (rank(a.benchmark), a.benchmark) < (rank(b.benchmark), b.benchmark)
    }
    if a.metric != b.metric { return a.metric < b.metric }
    if a.layer != b.layer { return (rank(layer: a.layer), a.layer ?? "") < (rank(layer: b.layer), b.layer ?? "") }
    return (a.k ?? -1) < (b.k ?? -1)
  }

  static let layerOrder = Benchmark.features + ["avgpool", "bbox", "segm"]
}

/// How a number was measured, as `key=value` facets: `dataset=VOC2007`, `costs=1,10,100`, `pooling=adaptive`,
/// `cached-features` (a bare flag reads as `=true`).
///
/// A run states in `NewRun.protocolVariant` only where it departs from MMSelfSup v0.8.0's protocol, as facets
/// separated by `;`, newlines or spaces (`costs=1,10,100; pooling=adaptive; image-size=32`), or as a JSON object.
/// The keys `compare` knows: dataset, image-size, pooling, costs, ap, cost-selection, samples, epochs,
/// temperature, cached-features, detector, model, schedule, crop, codebase, pretrain. Any other key counts as a
/// departure too.
public struct ProtocolFacets: Sendable, Equatable {
  public private(set) var values: [String: String]

  public init(_ values: [String: String] = [:]) {
    self.values = Dictionary(values.map { (Self.normalizedKey($0.key), $0.value) }, uniquingKeysWith: { $1 })
  }

  /// Parses a run's `protocolVariant`; nil or blank is the standard protocol (no facets).
  public init(parsing variant: String?) {
    var values: [String: String] = [:]
    let text = (variant ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    if text.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
      for (key, value) in object {
        switch value {
        case let list as [Any]: values[key] = list.map { "\($0)" }.joined(separator: ",")
        case let flag as Bool: values[key] = flag ? "true" : "false"
        default: values[key] = "\(value)"
        }
      }
    } else {
      var lastKey: String?
      for token in text.split(whereSeparator: { $0 == ";" || $0.isWhitespace }) {
        let token = String(token)
        if let equals = token.firstIndex(of: "=") {
          let key = String(token[..<equals])
          values[key] = String(token[token.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: ","))
          lastKey = key
        } else if let key = lastKey, token.first.map({ $0.isNumber || $0 == "," || $0 == "." }) == true {
          // `costs=1, 10, 100`: a list split at its spaces continues the previous value.
          let piece = token.trimmingCharacters(in: CharacterSet(charactersIn: ","))
          values[key] = [values[key] ?? "", piece].filter { !$0.isEmpty }.joined(separator: ",")
        } else {
          values[token] = "true"
          lastKey = nil
        }
      }
    }
    self.init(values)
  }

  public subscript(key: String) -> String? {
    get { values[Self.normalizedKey(key)] }
    set { values[Self.normalizedKey(key)] = newValue }
  }

  /// `self` with `other`'s facets replacing or adding to its own.
  public func merging(_ other: ProtocolFacets) -> ProtocolFacets {
    ProtocolFacets(values.merging(other.values) { $1 })
  }

  /// Facets whose values differ, by key: each as `key: mine vs theirs` (a missing facet reads `unset`).
  public func differences(from other: ProtocolFacets) -> [FacetDifference] {
    Set(values.keys).union(other.values.keys).sorted().compactMap { key in
      let mine = values[key], theirs = other.values[key]
      return Self.sameValue(mine, theirs) ? nil : FacetDifference(key: key, measured: mine, reference: theirs)
    }
  }

  /// Lower-case, trimmed, `_` as `-`.
  static func normalizedKey(_ key: String) -> String {
    key.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "_", with: "-")
  }

  /// Case-insensitive text, or equal number lists as sets (a cost list in another order or notation is the same);
  /// an unset flag equals `false`.
  static func sameValue(_ a: String?, _ b: String?) -> Bool {
    let falsy: Set<String> = ["false", "no", "0", "off"]
    switch (a?.lowercased().trimmingCharacters(in: .whitespaces), b?.lowercased().trimmingCharacters(in: .whitespaces)) {
    case (nil, nil): return true
    case let (value?, nil), let (nil, value?): return falsy.contains(value)
    case let (x?, y?):
      if x == y { return true }
      let xs = x.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
      let ys = y.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
      guard !xs.isEmpty, xs.count == ys.count, !xs.contains(nil), !ys.contains(nil) else { return false }
      return zip(xs.compactMap { $0 }.sorted(), ys.compactMap { $0 }.sorted()).allSatisfy {
        abs($0 - $1) <= 1e-9 * max(abs($0), abs($1))
      }
    }
  }
}

/// One facet on which a measurement and its reference differ.
public struct FacetDifference: Sendable, Equatable, Hashable, CustomStringConvertible {
  public var key: String
  public var measured: String?
  public var reference: String?

  public var description: String {
    func shown(_ value: String?) -> String {
      guard let value else { return "unset" }
      return value.count > 60 ? String(value.prefix(57)) + "…" : value
    }
    return "\(key) \(shown(measured)) vs \(shown(reference))"
  }
}

/// One published number.
public struct ReferenceCell: Sendable, Equatable {
  public var key: CellKey
  public var value: Double
}

/// A published set of numbers: one row of a table or paper, with where it comes from.
public struct Reference: Sendable {
  /// What `compare --reference` takes, e.g. `mmselfsup-100e`.
  public var name: String
  /// The checkpoint's name in the source's table, for legends.
  public var label: String
  public var title: String
  /// Where the numbers are printed.
  public var source: String
  public var cells: [ReferenceCell]
  /// The protocol per benchmark: MMSelfSup v0.8.0's, with this reference's own departures applied.
  public var protocols: [String: ProtocolFacets]

  /// The reference's protocol for `benchmark` (no facets for a benchmark the catalogue does not describe).
  public func protocolFacets(for benchmark: String) -> ProtocolFacets { protocols[benchmark] ?? ProtocolFacets() }

  public func value(_ key: CellKey) -> Double? { cells.first { $0.key == key }?.value }
}

/// The references shipped with simsiam-bench.
public struct ReferenceCatalog: Sendable {
  public var references: [Reference]
  /// MMSelfSup v0.8.0's protocol per benchmark.
  public var standardProtocols: [String: ProtocolFacets]
  /// Class names of the datasets the protocols name (VOC2007's 20), to recognise scores on another dataset.
  public var classes: [String: [String]]

  /// The embedded catalogue. A malformed embedded file is a build defect (ReferenceCatalogTests decodes it).
  public static let builtIn: ReferenceCatalog = {
    do {
      return try ReferenceCatalog(json: Data(embeddedJSON.utf8))
    } catch {
      preconditionFailure("The embedded reference numbers (ReferenceNumbers.swift) do not decode: \(error).")
    }
  }()

  public init(json: Data) throws {
    let file = try JSONDecoder().decode(ReferenceFile.self, from: json)
    for benchmark in file.protocols.keys where BenchmarkID(rawValue: benchmark) == nil {
      throw CompareError.malformedReferences(reason: "protocols: '\(benchmark)' names no known benchmark")
    }
    let standard = file.protocols.mapValues(ProtocolFacets.init)
    classes = file.classes
    standardProtocols = standard
    references = try file.references.map { entry in
      var cells: [ReferenceCell] = []
      for group in entry.scores {
        guard BenchmarkID(rawValue: group.benchmark) != nil, Metric(rawValue: group.metric) != nil else {
          throw CompareError.malformedReferences(
            reason: "\(entry.name): '\(group.benchmark)' '\(group.metric)' names no known benchmark and metric")
        }
        let layers: [String?] = group.layers ?? [group.layer]
        let ks: [Int?] = group.ks ?? [group.k]
        guard layers.count == 1 || ks.count == 1, layers.count * ks.count == group.values.count else {
          throw CompareError.malformedReferences(
            reason: "\(entry.name): \(group.benchmark) \(group.metric) has \(group.values.count) values for "
              + "\(layers.count) layers × \(ks.count) k")
        }
        var index = 0
        for layer in layers { for k in ks {
          cells.append(ReferenceCell(key: CellKey(benchmark: group.benchmark, metric: group.metric, layer: layer, k: k),
                                     value: group.values[index]))
          index += 1
        } }
      }
      var protocols = standard
      for (benchmark, facets) in entry.protocol ?? [:] {
        guard BenchmarkID(rawValue: benchmark) != nil else {
          throw CompareError.malformedReferences(
            reason: "\(entry.name): protocol '\(benchmark)' names no known benchmark")
        }
        protocols[benchmark] = (protocols[benchmark] ?? ProtocolFacets()).merging(ProtocolFacets(facets))
      }
      return Reference(name: entry.name, label: entry.label, title: entry.title, source: entry.source,
                       cells: cells.sorted { $0.key < $1.key }, protocols: protocols)
    }
  }

  /// The reference called `name`, or `CompareError.unknownReference` listing the known names.
  public func reference(named name: String) throws -> Reference {
    guard let reference = references.first(where: { $0.name == name }) else {
      throw CompareError.unknownReference(name: name, known: references.map(\.name))
    }
    return reference
  }

  /// Every reference: name, number of cells, title and source.
  public var listing: String {
    var text = ""
    for reference in references {
      let benchmarks = reference.cells.map(\.key.benchmark).reduce(into: [String]()) { list, name in
        if !list.contains(name) { list.append(name) }
      }
      text += "\(reference.name)  (\(reference.cells.count) numbers: \(benchmarks.joined(separator: ", ")))\n"
      text += "  \(reference.title)\n  source: \(reference.source)\n"
    }
    return text
  }
}

/// The JSON layout of ReferenceNumbers.swift.
private struct ReferenceFile: Decodable {
  struct Entry: Decodable {
    var name: String
    var label: String
    var title: String
    var source: String
    var `protocol`: [String: [String: String]]?
    var scores: [Group]
  }
  /// Values of one benchmark/metric over `layers` or `ks` (at most one of them a list).
  struct Group: Decodable {
    var benchmark: String
    var metric: String
    var layer: String?
    var layers: [String]?
    var k: Int?
    var ks: [Int]?
    var values: [Double]
  }
  var protocols: [String: [String: String]]
  var classes: [String: [String]]
  var references: [Entry]
}
