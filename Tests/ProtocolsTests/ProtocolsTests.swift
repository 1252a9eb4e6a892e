import Testing
@testable import Protocols
