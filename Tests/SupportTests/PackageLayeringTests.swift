import Foundation
import Testing

/// Package.swift lists targets bottom to top and says a target imports only targets listed above it; this keeps it
/// true for every library and the CLI (test targets may import anything).
@Suite struct PackageLayeringTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  @Test func everyImportNamesATargetListedAbove() throws {
    let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
    let markers = [".target(name: \"", ".executableTarget(name: \"", ".systemLibrary(name: \""]
    let targets = manifest.components(separatedBy: "// MARK: - Tests")[0].split(separator: "\n").compactMap { line in
      markers.lazy.compactMap { line.components(separatedBy: $0).dropFirst().first }.first?
        .components(separatedBy: "\"").first
    }
    #expect(targets.contains("Support") && targets.contains("Training") && targets.contains("Evaluation"))
    let position = Dictionary(targets.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    var violations: [String] = []
    for target in targets {
      let folder = Self.root.appendingPathComponent("Sources/\(target)")
      guard let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { continue }
      for case let file as URL in files where file.pathExtension == "swift" {
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
          let module = String(line.split(separator: " ").last!)
          // Pretraining and the evaluation protocols are siblings: neither imports the other.
          let isListedAbove = position[module].map { $0 < position[target]! } ?? true  // other modules: any
          // Distributed sits beside the engine: it imports MPI's shim (and system modules), no project target.
          let distributedImportsEngine = target == "Distributed" && position[module] != nil && module != "CMPI"
          if !isListedAbove || (target, module) == ("Evaluation", "Training") || distributedImportsEngine {
            violations.append("\(target)/\(file.lastPathComponent) imports \(module)")
          }
        }
      }
    }
    #expect(violations == [])
  }
}
