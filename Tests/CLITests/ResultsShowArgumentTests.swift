// `results show <run>`: a run id that is not a positive integer is named as such (issue 14 item 11; on main
// `results show -1` answered "Missing expected argument '<run>'").
import Testing
@testable import SimSiamBenchCLI

@Suite struct ResultsShowArgumentTests {
  @Test(arguments: ["-1", "0", "abc", "1.5", "-9223372036854775808"])
  func aRunIDThatIsNotAPositiveIntegerIsNamed(_ text: String) {
    do {
      _ = try SimSiamBench.parseAsRoot(["results", "show", text])
      Issue.record("accepted \(text)")
    } catch {
      let message = SimSiamBench.message(for: error)
      #expect(message.contains("A run id must be a positive integer") && message.contains("'\(text)'"), "\(message)")
    }
  }

  @Test func aPositiveRunIDParses() throws {
    let show = try #require(try SimSiamBench.parseAsRoot(["results", "show", "--db", "x.sqlite", "42"])
                              as? Results.Show)
    #expect(show.runID == 42 && show.common.db == "x.sqlite")
  }

  @Test(arguments: [(["results", "show"], "Missing the run id"), (["results", "show", "--bogus"], "--bogus"),
                    (["results", "show", "1", "2"], "Expected one run id")])
  func missingExtraOrUnknownArgumentsAreNamed(arguments: [String], expected: String) {
    do {
      _ = try SimSiamBench.parseAsRoot(arguments)
      Issue.record("accepted \(arguments)")
    } catch {
      #expect(SimSiamBench.message(for: error).contains(expected), "\(SimSiamBench.message(for: error))")
    }
  }
}
