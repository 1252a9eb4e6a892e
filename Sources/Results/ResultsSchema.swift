// The results database schema as named, append-only migrations: never edit a shipped one, add the next.
import GRDB

enum ResultsSchema {
  /// Every migration, oldest first. A database that has applied a name not listed here is from a newer version.
  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-runs-scores-epochs") { db in
      try db.execute(sql: """
        CREATE TABLE run (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          kind TEXT NOT NULL CHECK (kind IN ('pretrain', 'evaluate')),
          protocol TEXT NOT NULL,
          label TEXT NOT NULL,
          config_file TEXT,
          config TEXT NOT NULL DEFAULT '{}',
          checkpoint_path TEXT,
          checkpoint_sha256 TEXT,
          checkpoint_layout TEXT,
          dataset_path TEXT,
          dataset_fingerprint TEXT,
          protocol_variant TEXT,
          code_version TEXT NOT NULL,
          host TEXT NOT NULL,
          pid INTEGER NOT NULL,
          process_start INTEGER,
          threads INTEGER NOT NULL,
          started_at TEXT NOT NULL,
          finished_at TEXT,
          status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
          message TEXT
        );
        CREATE INDEX run_by_label ON run(label);

        CREATE TABLE score (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
          benchmark TEXT NOT NULL,
          metric TEXT NOT NULL,
          layer TEXT,
          k INTEGER,
          sample INTEGER,
          cost REAL,
          value REAL NOT NULL,
          count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
          std REAL
        );
        CREATE INDEX score_by_run ON score(run_id);
        CREATE INDEX score_by_benchmark ON score(benchmark, metric);

        CREATE TABLE class_score (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          score_id INTEGER NOT NULL REFERENCES score(id) ON DELETE CASCADE,
          class_name TEXT NOT NULL,
          value REAL NOT NULL,
          UNIQUE (score_id, class_name)
        );

        CREATE TABLE epoch_metric (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
          epoch INTEGER NOT NULL,
          loss REAL NOT NULL,
          learning_rate REAL NOT NULL,
          output_std REAL,
          images_per_second REAL,
          UNIQUE (run_id, epoch)
        );
        """)
    }
    // The pretraining kNN monitor's top-1 accuracy per epoch (percent), NULL for epochs it did not run after and in
    // databases written before this migration.
    migrator.registerMigration("v2-epoch-knn-top1") { db in
      try db.execute(sql: "ALTER TABLE epoch_metric ADD COLUMN knn_top1 REAL")
    }
    // The epoch after which an intermediate score was measured (linear probes evaluated during training); NULL for
    // final results and in databases written before this migration.
    migrator.registerMigration("v3-score-epoch") { db in
      try db.execute(sql: "ALTER TABLE score ADD COLUMN epoch INTEGER")
    }
    // A resumed training continues its own run row: each resume is recorded here (when, by which process, from
    // which checkpoint and epoch) instead of starting a new run.
    migrator.registerMigration("v4-run-resume") { db in
      try db.execute(sql: """
        CREATE TABLE run_resume (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
          resumed_at TEXT NOT NULL,
          previous_status TEXT NOT NULL,
          from_epoch INTEGER NOT NULL,
          from_iteration INTEGER NOT NULL,
          checkpoint_path TEXT NOT NULL,
          host TEXT NOT NULL,
          pid INTEGER NOT NULL
        );
        CREATE INDEX run_resume_by_run ON run_resume(run_id);
        """)
    }
    return migrator
  }
}
