// `simsiam-bench results …` and `simsiam-bench report …`: read the results database; the work is in Results.
import Support
import ArgumentParser
import Foundation
import Results

struct Results: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List, show, delete and export the runs and scores in the results database.",
    discussion: "A run still marked running whose process is gone from this host is listed as died.",
    subcommands: [List.self, Show.self, Delete.self, Export.self])

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every run, oldest first.")
    @OptionGroup var common: CommonOptions

    func output() throws -> String {
      let store = try openForReading(common.db)
      let runs = try store.runs()
      if runs.isEmpty { return "No runs in \(common.db).\n" }
      return RunTables.list(runs, scoreCounts: try store.scoreCounts()).text()
    }

    func run() throws { print(try output(), terminator: "") }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show one run: its provenance, scores, per-class scores and pretraining epochs.")
    @OptionGroup var common: CommonOptions
    // Taken as text so that "-1" reaches `validate()` (ArgumentParser would read it as an unknown short option
    // and answer "Missing expected argument").
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The run id (see `results list`).", valueName: "run"))
    var runText: [String] = []

    /// The run id, once `validate()` has accepted `runText`.
    var runID: Int64 { Int64(runText.first ?? "") ?? 0 }

    func validate() throws {
      guard let text = runText.first else { throw ValidationError("Missing the run id (see `results list`).") }
      if text.hasPrefix("--") { throw ValidationError("Unknown option '\(text)'.") }
      guard let id = Int64(text), id > 0 else {
        throw ValidationError("A run id must be a positive integer (see `results list`), got '\(text)'.")
      }
      guard runText.count == 1 else {
        throw ValidationError("Expected one run id, got \(runText.count): \(runText.joined(separator: " ")).")
      }
    }

    func output() throws -> String {
      let store = try openForReading(common.db)
      let id = RunID(runID)
      var text = RunTables.details(try store.run(id))
      let scores = try store.scores(run: id)
      text += "\n" + (scores.isEmpty ? "No scores.\n" : RunTables.scores(scores).text())
      if let perClass = RunTables.perClass(scores) { text += "\n" + perClass.text() }
      let resumes = try store.resumes(run: id)
      if !resumes.isEmpty { text += "\n" + RunTables.resumes(resumes).text() }
      let epochs = try store.epochMetrics(run: id)
      if !epochs.isEmpty { text += "\n" + RunTables.epochs(epochs).text() }
      return text
    }

    func run() throws { print(try output(), terminator: "") }
  }

  struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete a run with its scores, per-class scores and epoch metrics.")
    @OptionGroup var common: CommonOptions
    @Argument(help: ArgumentHelp("The run id (see `results list`).", valueName: "run")) var runID: Int64

    func output() throws -> String {
      let store = try ResultsStore(path: common.db, createIfMissing: false)
      let id = RunID(runID)
      let victim = try store.run(id)
      let scores = try store.scores(run: id).count
      try store.deleteRun(id)
      return "Deleted run \(id) (\(victim.protocolName), \(victim.label), \(scores) scores) from \(common.db).\n"
    }

    func run() throws { print(try output(), terminator: "") }
  }

  struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Export every score with its run's provenance.",
      discussion: "One row per score; run columns repeat. Numbers are written exactly (shortest round-trip form).")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Write CSV (RFC 4180). The only format so far, and required.") var csv = false
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func validate() throws {
      guard csv else { throw ValidationError("Choose an export format: --csv.") }
    }

    func rendered() throws -> String {
      let store = try openForReading(common.db)
      return RunTables.export(try store.runs(), scores: try store.allScores()).csv()
    }

    func run() throws { try emit(try rendered(), to: output) }
  }
}

struct Report: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Render the reference README's tables (and, as HTML, charts) from the stored scores.",
    subcommands: [Markdown.self, HTMLPage.self])

  struct Markdown: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The VOC SVM / low-shot, ImageNet linear, Places205, kNN, detection and segmentation tables.",
      discussion: """
        One row per evaluated checkpoint (finished runs with the same label and checkpoint hash), "–" where a \
        score is missing; tables without rows are left out.
        """)
    @OptionGroup var common: CommonOptions
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func rendered() throws -> String {
      let store = try openForReading(common.db)
      return try StandardReports(store: store).markdown(source: common.db)
    }

    func run() throws { try emit(try rendered(), to: output) }
  }

  struct HTMLPage: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "html",
      abstract: "One self-contained HTML page: charts (inline SVG) and the Markdown report's tables.",
      discussion: """
        Charts: low-shot mAP against k (log scale) per checkpoint with the reference curves, VOC07 SVM mAP and \
        linear-probe top-1 per layer, and pretraining loss, learning rate and collapse std (with 1/√d) per epoch. \
        No scripts, no network; the same database gives the same bytes.
        """)
    @OptionGroup var common: CommonOptions
    @Option(help: "Write to this file instead of standard output.") var output: String?
    @Option(help: ArgumentHelp("A reference drawn beside the measured curves (repeatable; see `compare --list`).",
                               valueName: "name"))
    var reference: [String] = HTMLReport.defaultReferences
    @Flag(help: "Draw no reference curves.") var noReferences = false

    func rendered() throws -> String {
      let store = try openForReading(common.db)
      let references = noReferences ? [] : try reference.map { try ReferenceCatalog.builtIn.reference(named: $0) }
      return try HTMLReport(store: store, references: references, source: common.db).render()
    }

    func run() throws { try emit(try rendered(), to: output) }
  }
}

/// Opens the results database for a command that only reads it: read-only, so a read-only file or folder works
/// and the file is left as it was. A database an older version wrote is migrated first when it can be written
/// (as every opening did before); when it cannot, the read-only store's `.outdatedSchema` error stands.
func openForReading(_ path: String) throws -> ResultsStore {
  do {
    return try ResultsStore(path: path, access: .readOnly)
  } catch let error as ResultsError {
    guard case .outdatedSchema = error else { throw error }
    let outdated = error
    do { _ = try ResultsStore(path: path, createIfMissing: false) } catch { throw outdated }
    return try ResultsStore(path: path, access: .readOnly)
  }
}

/// Prints `text`, or writes it to `path` (creating its folder) and says so.
private func emit(_ text: String, to path: String?) throws {
  guard let path else { return print(text, terminator: "") }
  if PathKind(path) == .directory {
    throw ValidationError("--output \(path) is a folder; give a file path, e.g. \(path)/report.html.")
  }
  let url = URL(fileURLWithPath: path)
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try AtomicFile.write(Data(text.utf8), to: url)
  print("Wrote \(path)")
}
