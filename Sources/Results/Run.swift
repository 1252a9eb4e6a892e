// A pretraining or evaluation run with its provenance: one row of the `run` table.
import Foundation
import GRDB

/// The id of a stored run.
public struct RunID: RawRepresentable, Hashable, Comparable, Codable, Sendable, CustomStringConvertible,
  DatabaseValueConvertible
{
  public var rawValue: Int64
  public init(rawValue: Int64) { self.rawValue = rawValue }
  public init(_ rawValue: Int64) { self.rawValue = rawValue }
  public var description: String { String(rawValue) }
  public static func < (a: RunID, b: RunID) -> Bool { a.rawValue < b.rawValue }
}

/// What a run does.
public enum RunKind: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
  case pretrain, evaluate
}

/// A run's state. The table holds `running`, `finished` or `failed`; `died` is only ever a reading: a run still
/// `running` in the table whose process is gone from this host.
public enum RunStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
  case running, finished, failed, died
}

/// What a caller knows when a run starts; `ResultsStore.beginRun` adds host, pid and start time.
public struct NewRun: Sendable {
  public var kind: RunKind
  /// The protocol, e.g. `simsiam` (pretraining), `voc07-svm`, `imagenet-linear`, `voc12aug-fcn`.
  public var protocolName: String
  /// The name reports show for the evaluated checkpoint, e.g. `resnet50_8xb32-coslr-100e`.
  public var label: String
  /// The pretraining config file reports link the label to, e.g. `simsiam_resnet50_8xb32-coslr-100e_in1k.py`.
  public var configFile: String?
  /// The full configuration as a JSON object.
  public var config: String
  public var checkpointPath: String?
  /// Lower-case hex SHA-256 of the checkpoint file.
  public var checkpointSHA256: String?
  /// How the checkpoint's tensors are laid out, e.g. `mmselfsup`, `torchvision`, `simsiam-official`.
  public var checkpointLayout: String?
  public var datasetPath: String?
  public var datasetFingerprint: String?
  /// Where the run departs from the reference protocol, e.g. `costs=1,10,100` or `cached-features`.
  public var protocolVariant: String?
  public var codeVersion: String
  public var threads: Int

  public init(kind: RunKind, protocolName: String, label: String, configFile: String? = nil, config: String = "{}",
              checkpointPath: String? = nil, checkpointSHA256: String? = nil, checkpointLayout: String? = nil,
              datasetPath: String? = nil, datasetFingerprint: String? = nil, protocolVariant: String? = nil,
              codeVersion: String, threads: Int) {
    self.kind = kind
    self.protocolName = protocolName
    self.label = label
    self.configFile = configFile
    self.config = config
    self.checkpointPath = checkpointPath
    self.checkpointSHA256 = checkpointSHA256
    self.checkpointLayout = checkpointLayout
    self.datasetPath = datasetPath
    self.datasetFingerprint = datasetFingerprint
    self.protocolVariant = protocolVariant
    self.codeVersion = codeVersion
    self.threads = threads
  }
}

/// One stored run. Timestamps are ISO-8601 UTC text in the database.
public struct Run: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "run"

  public var id: RunID?
  public var kind: RunKind
  public var protocolName: String
  public var label: String
  public var configFile: String?
  public var config: String
  public var checkpointPath: String?
  public var checkpointSHA256: String?
  public var checkpointLayout: String?
  public var datasetPath: String?
  public var datasetFingerprint: String?
  public var protocolVariant: String?
  public var codeVersion: String
  public var host: String
  public var pid: Int32
  /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22), so a reused pid is not
  /// mistaken for the run's process; nil where /proc is unavailable.
  public var processStart: Int64?
  public var threads: Int
  public var startedAt: Date
  public var finishedAt: Date?
  public var status: RunStatus
  /// Why a failed run failed.
  public var message: String?

  enum CodingKeys: String, CodingKey {
    case id, kind, label, config, host, pid, threads, status, message
    case protocolName = "protocol", configFile = "config_file"
    case checkpointPath = "checkpoint_path", checkpointSHA256 = "checkpoint_sha256"
    case checkpointLayout = "checkpoint_layout", datasetPath = "dataset_path"
    case datasetFingerprint = "dataset_fingerprint", protocolVariant = "protocol_variant"
    case codeVersion = "code_version", processStart = "process_start"
    case startedAt = "started_at", finishedAt = "finished_at"
  }

  public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .iso8601 }
  public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .iso8601 }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = RunID(inserted.rowID) }

  /// The id of a stored run; a run read from the store always has one.
  public var runID: RunID {
    guard let id else { preconditionFailure("Run '\(label)' has not been inserted, so it has no id.") }
    return id
  }
}

/// One resume of a run: a training continued from a checkpoint by a later process (migration `v4-run-resume`).
public struct RunResume: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "run_resume"

  public var id: Int64?
  public var runID: RunID
  public var resumedAt: Date
  /// The run's status before the resume: `died`, `failed` or `finished` (a finished run trained further).
  public var previousStatus: String
  /// Completed epochs and iterations of the run at the checkpoint resumed from.
  public var fromEpoch: Int
  public var fromIteration: Int
  public var checkpointPath: String
  public var host: String
  public var pid: Int32

  enum CodingKeys: String, CodingKey {
    case id, host, pid
    case runID = "run_id", resumedAt = "resumed_at", previousStatus = "previous_status", fromEpoch = "from_epoch"
    case fromIteration = "from_iteration", checkpointPath = "checkpoint_path"
  }

  public init(runID: RunID, resumedAt: Date, previousStatus: String, fromEpoch: Int, fromIteration: Int,
              checkpointPath: String, host: String, pid: Int32) {
    self.runID = runID
    self.resumedAt = resumedAt
    self.previousStatus = previousStatus
    self.fromEpoch = fromEpoch
    self.fromIteration = fromIteration
    self.checkpointPath = checkpointPath
    self.host = host
    self.pid = pid
  }

  public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .iso8601 }
  public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .iso8601 }
  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
