// Commands whose work lands in later versions. They parse the shared options, accept any further arguments,
// and fail with `NotImplementedYet` rather than pretend to run.
import ArgumentParser

/// The body every planned command shares.
protocol PlannedCommand: ParsableCommand {
  var common: CommonOptions { get }
}

extension PlannedCommand {
  func run() throws {
    throw NotImplementedYet(command: Self.configuration.commandName ?? "\(Self.self)".lowercased())
  }
}
