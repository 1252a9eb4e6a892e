import Foundation
import Testing
import Tensors
import Layers
import Checkpoints

/// A conv weight (OHWI inside, OIHW exported), a bias and BatchNorm-style buffers: every export path.
final class TinyModel: Layer {
  let weight: Parameter
  let bias: Parameter
  let runningMean: Parameter
  let batchesTracked: Parameter

  init(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    weight = Parameter(Tensor.randomNormal([2, 3, 3, 4], using: &rng), exportLayout: .convOHWI)  // [out, kh, kw, in]
    bias = Parameter(Tensor.randomNormal([2], using: &rng))
    runningMean = Parameter(Tensor.randomNormal([2], using: &rng), isBuffer: true)
    batchesTracked = Parameter(Tensor(shape: [], scalars: [Float(seed)]), isBuffer: true, storageType: .int64)
  }

  func forward(_ x: Tensor, mode: Mode) -> (Tensor, Void) { (x, ()) }
  func backward(_ dy: Tensor, _ cache: Void) -> Tensor { dy }
  var namedParameters: [NamedParameter] {
    [("conv.weight", weight), ("conv.bias", bias), ("bn.running_mean", runningMean),
     ("bn.num_batches_tracked", batchesTracked)]
  }
}

@Suite struct StateDictTests {
  @Test func exportsPyTorchLayoutAndTypes() {
    let model = TinyModel(seed: 1)
    let state = model.stateDict()
    #expect(Set(state.keys) == ["conv.weight", "conv.bias", "bn.running_mean", "bn.num_batches_tracked"])
    #expect(state["conv.weight"]!.value.shape == [2, 4, 3, 3])  // OIHW
    // OIHW element (o=1, i=2, h=0, w=1) is OHWI element (o=1, h=0, w=1, i=2).
    #expect(state["conv.weight"]!.value[[1, 2, 0, 1]] == model.weight.value[[1, 0, 1, 2]])
    #expect(state["bn.num_batches_tracked"]!.dtype == .i64)
    #expect(state["conv.bias"]!.dtype == .f32)
  }

  @Test func roundTripsThroughSafeTensors() throws {
    let source = TinyModel(seed: 1), target = TinyModel(seed: 2)
    try withTemporaryFile { url in
      try StateDict.save(source.namedParameters, metadata: ["epoch": "7"], to: url)
      let metadata = try StateDict.load(from: url, into: target.namedParameters)
      #expect(metadata == ["epoch": "7"])
    }
    for ((name, a), (_, b)) in zip(source.namedParameters, target.namedParameters) {
      #expect(a.value == b.value, "\(name) differs after the round trip")
    }
  }

  @Test func strictLoadListsEveryMismatchAndChangesNothing() {
    let model = TinyModel(seed: 3)
    let before = model.namedParameters.map(\.parameter.value)
    var state = TinyModel(seed: 4).stateDict()
    state["conv.bias"] = nil
    state["fc.weight"] = StoredTensor(Tensor.zeros([1]))
    state["bn.running_mean"] = StoredTensor(Tensor.zeros([3]))
    #expect(throws: CheckpointError.stateDictMismatch(
      path: "m.safetensors", missing: ["conv.bias"], unexpected: ["fc.weight"],
      wrongShapes: [ShapeMismatch(name: "bn.running_mean", expected: [2], found: [3])])) {
      try model.loadStateDict(state, source: "m.safetensors")
    }
    #expect(model.namedParameters.map(\.parameter.value) == before)
    let message = CheckpointError.stateDictMismatch(path: "m.safetensors", missing: ["conv.bias"], unexpected: [],
                                                    wrongShapes: []).description
    #expect(message.contains("m.safetensors") && message.contains("conv.bias"))
  }
}
