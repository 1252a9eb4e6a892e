import Testing
@testable import Support
