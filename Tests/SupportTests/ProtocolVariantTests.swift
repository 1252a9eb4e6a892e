import Foundation
import Testing
@testable import Support

@Suite struct ProtocolVariantTests {
  @Test func canonicalTextSortsKeysAndWritesFlagsBare() {
    var variant = ProtocolVariant(["pooling": "adaptive", "costs": "1,10,100"])
    variant.flag("cached-features")
    #expect(variant.canonical == "cached-features; costs=1,10,100; pooling=adaptive")
    #expect(variant.stored == "cached-features; costs=1,10,100; pooling=adaptive")
    #expect(ProtocolVariant().stored == nil)
  }

  @Test func canonicalTextRoundTripsThroughParsingAndCodable() throws {
    let variant = ProtocolVariant(["image-size": "64", "mean": "0.286", "random-init": "true"])
    #expect(ProtocolVariant(canonical: variant.canonical) == variant)
    let json = try JSONEncoder().encode(variant)
    #expect(String(decoding: json, as: UTF8.self) == "\"image-size=64; mean=0.286; random-init\"")
    #expect(try JSONDecoder().decode(ProtocolVariant.self, from: json) == variant)
  }

  @Test func nonCanonicalTextIsRefused() {
    #expect(ProtocolVariant(canonical: "pooling=adaptive; costs=1") == nil)  // not sorted
    #expect(ProtocolVariant(canonical: "a=1;b=2") == nil)  // not "; "-separated
    #expect(ProtocolVariant(canonical: "") == ProtocolVariant())
  }

  @Test func removingAFacetByNil() {
    var variant = ProtocolVariant(["a": "1", "b": "2"])
    variant["a"] = nil
    #expect(variant.canonical == "b=2")
  }
}
