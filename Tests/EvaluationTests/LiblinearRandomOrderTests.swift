// `LiblinearSettings.reseedsRandomOrder` (what `--deterministic` sets): a reseeded fit runs alone in the process,
// so ordinary fits drawing from the C library's global `rand()` on other threads cannot change its coordinate
// order. (Before, `srand(1)` alone left the CLI's --deterministic equality test open to other suites' fits.)
import Dispatch
import Foundation
import Testing
@testable import Evaluation

@Suite struct LiblinearRandomOrderTests {
  @Test func reseededFitsAreBitIdenticalBesideConcurrentOrdinaryFits() throws {
    let data = syntheticLayer(classes: 2, train: 200, test: 10, dimension: 64, seed: 21, noise: 2.5)
    let problem = try LiblinearProblem(features: data.train, bias: 1, layer: "x", location: { "\($0)" })
    let rows = Array(0..<200)
    let labels = rows.map { data.trainLabels[$0, 0] == 1 ? 1.0 : -1.0 }
    var ordinary = LiblinearSettings()
    ordinary.finishCappedFits = false  // the dual's end point, which depends on the order
    var reseeded = ordinary
    reseeded.reseedsRandomOrder = true
    let reference = try problem.fit(rows: rows, labels: labels, cost: 1, settings: reseeded)

    // The order does matter for this fit: an ordinary one (another, unseeded order) ends elsewhere within the
    // tolerance, so the equality below could fail.
    let other = try problem.fit(rows: rows, labels: labels, cost: 1, settings: ordinary)
    #expect(other.weights != reference.weights)

    let stop = StopFlag()
    let background = DispatchGroup()
    let ordinaryFits = ordinary
    for _ in 0..<2 {
      DispatchQueue.global().async(group: background) {
        while !stop.isSet { _ = try? problem.fit(rows: rows, labels: labels, cost: 1, settings: ordinaryFits) }
      }
    }
    defer { stop.set(); background.wait() }
    for attempt in 0..<8 {
      let again = try problem.fit(rows: rows, labels: labels, cost: 1, settings: reseeded)
      #expect(again.weights == reference.weights && again.bias == reference.bias, "attempt \(attempt)")
    }
  }
}

private final class StopFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var value = false
  var isSet: Bool { lock.withLock { value } }
  func set() { lock.withLock { value = true } }
}
