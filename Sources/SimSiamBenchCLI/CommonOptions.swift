// Options every working command shares, and the error of commands that are not built yet.
import ArgumentParser
import Tensors

/// `--threads`, `--seed` and `--db`, shared through `@OptionGroup`.
struct CommonOptions: ParsableArguments {
  @Option(help: "Worker threads for the kernels and OpenBLAS; 0 uses all active cores.")
  var threads: Int = 0

  @Option(help: "Seed of every random draw (initialisation, augmentation, data order).")
  var seed: UInt64 = 0

  @Option(help: "The SQLite results database.")
  var db: String = "results/simsiam.sqlite"

  func validate() throws {
    guard threads >= 0 else { throw ValidationError("--threads must be 0 (all cores) or positive, got \(threads).") }
  }

  /// Applies `--threads` to the engine and tunes the allocator; call once, before any kernel runs.
  func configureThreads() {
    Threads.configure(threads)
    Allocator.retainFreedMemory()
  }
}

/// A command whose work lands in a later version: it says so and exits with a failure status.
struct NotImplementedYet: Error, CustomStringConvertible {
  var command: String

  var description: String {
    "`simsiam-bench \(command)` is not implemented yet in this version (\(SimSiamBench.version)). "
      + "`simsiam-bench --help` lists the commands; those marked \"(not implemented yet)\" are still being built."
  }
}
