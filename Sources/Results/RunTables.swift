// The tables `simsiam-bench results` prints: the run list, one run's provenance and scores, the CSV export.
import Foundation

/// Formats stored runs and scores as `Table`s.
public enum RunTables {
  /// One line per run: id, status (with `died` for vanished processes), what ran, when, where, how many scores.
  public static func list(_ runs: [Run], scoreCounts: [RunID: Int]) -> Table {
    Table(title: "Runs", columns: ["ID", "Status", "Kind", "Protocol", "Label", "Started (UTC)", "Duration", "Host",
                                   "Scores"],
          rows: runs.map { run in
            [run.runID.description, run.status.rawValue, run.kind.rawValue, run.protocolName, run.label,
             timestamp(run.startedAt), duration(run), run.host, String(scoreCounts[run.runID] ?? 0)]
          })
  }

  /// A run's provenance as `field: value` lines.
  public static func details(_ run: Run) -> String {
    let fields: [(String, String?)] = [
      ("run", run.runID.description), ("status", run.status.rawValue), ("message", run.message),
      ("kind", run.kind.rawValue), ("protocol", run.protocolName), ("protocol variant", run.protocolVariant),
      ("label", run.label), ("config file", run.configFile), ("config", run.config),
      ("checkpoint", run.checkpointPath), ("checkpoint sha256", run.checkpointSHA256),
      ("checkpoint layout", run.checkpointLayout), ("dataset", run.datasetPath),
      ("dataset fingerprint", run.datasetFingerprint), ("code version", run.codeVersion),
      ("host", run.host), ("pid", String(run.pid)), ("threads", String(run.threads)),
      ("started", timestamp(run.startedAt)), ("finished", run.finishedAt.map(timestamp)),
      ("duration", duration(run)),
    ]
    let width = fields.map(\.0.count).max() ?? 0
    return fields.compactMap { name, value in
      value.map { (name + ":").padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0 }
    }.joined(separator: "\n") + "\n"
  }

  /// The resumes of a training that continued its run: when, by which process, from where.
  public static func resumes(_ resumes: [RunResume]) -> Table {
    Table(title: "Resumes", columns: ["Resumed (UTC)", "Was", "From epoch", "Iteration", "Checkpoint", "Host", "PID"],
          rows: resumes.map { resume in
            [timestamp(resume.resumedAt), resume.previousStatus, String(resume.fromEpoch),
             String(resume.fromIteration), resume.checkpointPath, resume.host, String(resume.pid)]
          })
  }

  /// A run's scores; per-class values are summarised as a count (see `perClass`).
  public static func scores(_ scores: [Score]) -> Table {
    Table(title: "Scores", columns: ["Benchmark", "Metric", "Layer", "k", "Sample", "Cost", "Epoch", "Value", "Count",
                                     "Std", "Classes"],
          rows: scores.map { score in
            [score.benchmark, score.metric, score.layer ?? "", score.k.map(String.init) ?? "",
             score.sample.map(String.init) ?? "", score.cost.map(number) ?? "", score.epoch.map(String.init) ?? "",
             number(score.value),
             String(score.count), score.std.map(number) ?? "",
             score.perClass.isEmpty ? "" : String(score.perClass.count)]
          })
  }

  /// Per-class values of every score that has them: one row per class, one column per score.
  public static func perClass(_ scores: [Score]) -> Table? {
    let withClasses = scores.filter { !$0.perClass.isEmpty }
    guard !withClasses.isEmpty else { return nil }
    var classes: [String] = []
    for score in withClasses { for entry in score.perClass where !classes.contains(entry.className) {
      classes.append(entry.className)
    } }
    let columns = ["Class"] + withClasses.map { score in
      ([score.benchmark, score.metric, score.layer] + [score.k.map { "k=\($0)" }]).compactMap { $0 }
        .joined(separator: " ")
    }
    return Table(title: "Per-class scores", columns: columns, rows: classes.map { name in
      [name] + withClasses.map { score in score.perClass.first { $0.className == name }.map { number($0.value) } ?? "" }
    })
  }

  /// Pretraining metrics per epoch.
  public static func epochs(_ metrics: [EpochMetric]) -> Table {
    Table(title: "Epochs", columns: ["Epoch", "Loss", "LR", "Output std", "Images/s", "kNN top-1 %"],
          rows: metrics.map {
            [String($0.epoch), number($0.loss), number($0.learningRate), $0.outputStd.map(number) ?? "",
             $0.imagesPerSecond.map { String(format: "%.1f", $0) } ?? "",
             $0.knnTop1.map { String(format: "%.2f", $0) } ?? ""]
          })
  }

  /// Every score with its run's provenance, one row per score, for `results export --csv`.
  public static func export(_ runs: [Run], scores: [RunID: [Score]]) -> Table {
    let columns = ["run_id", "status", "kind", "protocol", "protocol_variant", "label", "config_file",
                   "checkpoint_path", "checkpoint_sha256", "checkpoint_layout", "dataset_path", "dataset_fingerprint",
                   "code_version", "host", "threads", "started_at", "finished_at", "benchmark", "metric", "layer", "k",
                   "sample", "cost", "epoch", "value", "count", "std"]
    var rows: [[String]] = []
    for run in runs {
      let provenance = [run.runID.description, run.status.rawValue, run.kind.rawValue, run.protocolName,
                        run.protocolVariant ?? "", run.label, run.configFile ?? "", run.checkpointPath ?? "",
                        run.checkpointSHA256 ?? "", run.checkpointLayout ?? "", run.datasetPath ?? "",
                        run.datasetFingerprint ?? "", run.codeVersion, run.host, String(run.threads),
                        timestamp(run.startedAt), run.finishedAt.map(timestamp) ?? ""]
      for score in scores[run.runID] ?? [] {
        rows.append(provenance + [score.benchmark, score.metric, score.layer ?? "", score.k.map(String.init) ?? "",
                                  score.sample.map(String.init) ?? "", score.cost.map(exact) ?? "",
                                  score.epoch.map(String.init) ?? "", exact(score.value),
                                  String(score.count), score.std.map(exact) ?? ""])
      }
    }
    return Table(title: "Scores", columns: columns, rows: rows)
  }

  // MARK: - Formatting

  /// ISO-8601 UTC, seconds precision.
  public static func timestamp(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = .withInternetDateTime
    return formatter.string(from: date)
  }

  /// Wall time of a finished or failed run, "h:mm:ss"; empty while it runs.
  static func duration(_ run: Run) -> String {
    guard let end = run.finishedAt else { return "" }
    let seconds = max(0, Int(end.timeIntervalSince(run.startedAt).rounded()))
    return String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
  }

  /// Six significant digits at most, for reading.
  static func number(_ value: Double) -> String { String(format: "%.6g", value) }

  /// The shortest text that reads back as the same Double, for export.
  static func exact(_ value: Double) -> String { "\(value)" }
}
