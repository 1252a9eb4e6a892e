// `checkpoint convert --to detectron2`: every layout of the committed torch.save fixtures gives the pickle that
// scripts/reference/make_detectron2_fixtures.py verified against MMSelfSup's converter
// (Tests/CheckpointsTests/Fixtures/detectron2/mmselfsup_zoo_backbone.pkl), and bad arguments or inputs are
// refused naming what is wrong.
import ArgumentParser
import Checkpoints
import Foundation
import Support
import Tensors
import Testing
@testable import SimSiamBenchCLI

@Suite struct CheckpointConvertDetectron2Tests {
  static let goldenPickle = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("CheckpointsTests/Fixtures/detectron2/mmselfsup_zoo_backbone.pkl")

  func command(_ arguments: [String]) throws -> Checkpoint.Convert {
    try #require(try SimSiamBench.parseAsRoot(["checkpoint", "convert"] + arguments) as? Checkpoint.Convert)
  }

  /// The fixtures hold one tiny model (ResNet-50 at width 1/32) in each layout; its backbone converts to the same
  /// bytes whichever layout it comes in (fc, neck and predictor left out).
  @Test(arguments: ["mmselfsup_zoo_backbone.pth", "torchvision.pth", "mmselfsup1.pth", "mmselfsup0_train.pth",
                    "simsiam_official.pth.tar"])
  func everyLayoutGivesTheVerifiedPickle(fixture: String) throws {
    try CheckpointCommandEndToEndTests.withFolder { folder in
      let output = folder.appendingPathComponent("backbone.pkl")
      let input = CheckpointCommandEndToEndTests.torchFixture(fixture)
      let printed = try command(["--to", "detectron2", input.path, output.path]).convert()
      #expect(printed.hasSuffix("wrote 318 backbone tensors (detectron2 names) to \(output.path)"))
      #expect(printed.contains("note:") == !["mmselfsup_zoo_backbone.pth", "torchvision.pth"].contains(fixture))
      #expect(try Data(contentsOf: output) == Data(contentsOf: Self.goldenPickle))
    }
  }

  @Test func outputMustBeAPickle() {
    #expect(throws: (any Error).self) { _ = try command(["--to", "detectron2", "--rename", "in.pth", "out.pkl"]) }
    #expect(throws: (any Error).self) { _ = try command(["--to", "caffe2", "in.pth", "out.pkl"]) }
    do {
      _ = try command(["--to", "detectron2", "in.pth", "out.pth"])
      Issue.record("--to detectron2 accepted a .pth output")
    } catch {
      #expect(SimSiamBench.message(for: error).contains("name the output *.pkl, not 'out.pth'"))
    }
  }

  @Test func checkpointWithoutABackboneIsRefusedNamingTheFile() throws {
    try CheckpointCommandEndToEndTests.withFolder { folder in
      let input = folder.appendingPathComponent("neck_only.safetensors")
      try SafeTensors(tensors: ["neck.fc0.weight": StoredTensor(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))])
        .write(to: input)
      let output = folder.appendingPathComponent("out.pkl")
      do {
        _ = try command(["--to", "detectron2", input.path, output.path]).convert()
        Issue.record("a checkpoint without backbone tensors was converted")
      } catch {
        #expect("\(error)".contains(input.path))
      }
      #expect(!FileManager.default.fileExists(atPath: output.path))
    }
  }

  @Test func missingInputIsNamed() throws {
    try CheckpointCommandEndToEndTests.withFolder { folder in
      let input = folder.appendingPathComponent("absent.pth").path
      do {
        _ = try command(["--to", "detectron2", input, folder.appendingPathComponent("out.pkl").path]).convert()
        Issue.record("a missing input was converted")
      } catch {
        #expect("\(error)".contains(input))
      }
    }
  }
}
