// Starting the engine's worker threads with a check first (issue 14 item 5): a thread count the process cannot
// afford must be refused before OpenBLAS sees it.
//
// Why a check, not a recovery: OpenBLAS 0.3.x gives each of its worker threads a private 128 MiB packing buffer
// (`BUFFER_SIZE` = 32 << 22 in common_x86_64.h), allocated by the thread itself in `blas_memory_alloc`
// (driver/others/memory.c), which retries a failed mmap/malloc forever. Under an address-space limit
// (`ulimit -v 6000000`) `--threads 64` asked for 64 × 128 MiB = 8 GiB: the new threads spun in that loop, the
// next allocation of ours failed with a misleading message, and the process never exited (OpenBLAS's exit handler
// waits for its threads). A failed `pthread_create` inside OpenBLAS (`blas_thread_init`) raises SIGINT instead.
// Neither failure can be caught once OpenBLAS has started, so `Threads.start` proves both ahead: it reserves (and
// releases) the address space the workers will map, and starts (and joins) the threads once itself.
import Foundation
import Glibc

/// Why the requested worker threads cannot run; nothing was started when this is thrown.
public enum ThreadStartError: Error, Equatable, CustomStringConvertible {
  /// `--threads` outside `0...Threads.maximum`.
  case outOfRange(requested: Int, maximum: Int)
  /// The address space left under the process limit (`ulimit -v`, RLIMIT_AS) cannot hold the workers' buffers and
  /// stacks plus `Threads.workingReserveBytes` for the run itself. `affordable`: the largest count that fits.
  case notEnoughAddressSpace(threads: Int, neededBytes: Int, limitBytes: Int, inUseBytes: Int, affordable: Int)
  /// `pthread_create` failed for thread `started + 1` of `threads` (`errno`: its return code, e.g. EAGAIN).
  case cannotCreateThread(threads: Int, started: Int, errno: Int32)

  public var description: String {
    switch self {
    case let .outOfRange(requested, maximum):
      return "--threads must be 0 (all active cores) or 1…\(maximum), got \(requested)."
    case let .notEnoughAddressSpace(threads, needed, limit, inUse, affordable):
      return "Cannot start \(threads) worker threads: they need \(mebibytes(needed)) of memory (each OpenBLAS "
        + "thread maps a 128 MiB buffer and a stack, plus \(mebibytes(Threads.workingReserveBytes)) for the run), "
        + "but the address-space limit is \(mebibytes(limit)) with \(mebibytes(inUse)) in use. Hint: use "
        + (affordable >= 1 ? "--threads \(affordable) or fewer, or " : "")
        + "raise the limit (ulimit -v)."
    case let .cannotCreateThread(threads, started, code):
      return "Cannot start \(threads) worker threads: the system refused thread \(started + 1) "
        + "(pthread_create: \(String(cString: strerror(code)))), out of memory or of processes/threads. "
        + "Hint: use --threads \(max(1, started)) or fewer, or raise the limits (ulimit -u, ulimit -v)."
    }
  }
}

private func mebibytes(_ bytes: Int) -> String { "\(bytes >> 20) MiB" }

extension Threads {
  /// The largest `--threads` accepted: 256 (far above any core count this runs on; OpenBLAS itself stops at its
  /// build's MAX_THREADS, 64 for Debian's 0.3.21, and uses that many at most).
  public static let maximum = 256

  /// Address space one worker costs: OpenBLAS's packing buffer (`BUFFER_SIZE`, 128 MiB, plus a guard page) and a
  /// thread stack of the default size (glibc takes it from RLIMIT_STACK, 8 MiB by default).
  public static var bytesPerWorker: Int { (128 << 20) + 4096 + defaultStackBytes }

  /// Address space kept free for the run itself (tensors, images, the checkpoint) when judging a thread count.
  public static let workingReserveBytes = 1 << 30

  /// Validates `requested` (0: all active cores), proves that this many workers can start (see the file comment),
  /// then applies it like `configure`. Throws before anything is started or changed.
  public static func start(_ requested: Int) throws(ThreadStartError) {
    guard (0...maximum).contains(requested) else { throw .outOfRange(requested: requested, maximum: maximum) }
    let threads = requested > 0 ? requested : ProcessInfo.processInfo.activeProcessorCount
    try checkAddressSpace(threads: threads, limit: addressSpaceLimit())
    try probeThreadCreation(threads)
    configure(requested)  // 0 stays "all active cores" (configure's range is for requested counts)
  }

  /// Throws `.notEnoughAddressSpace` unless `threads` workers' buffers and stacks plus the working reserve can be
  /// mapped under `limit` (bytes; nil: no limit). The proof is a real reservation: one PROT_NONE mapping of that
  /// size, unmapped at once (it counts against RLIMIT_AS but touches no memory).
  static func checkAddressSpace(threads: Int, limit: Int?) throws(ThreadStartError) {
    guard let limit else { return }
    let (workers, overflow) = threads.multipliedReportingOverflow(by: bytesPerWorker)
    let needed = overflow ? Int.max : workers &+ workingReserveBytes
    let inUse = addressSpaceInUse()
    let fits = needed <= limit - inUse && reserveAndRelease(needed)
    guard !fits else { return }
    let affordable = max(0, (limit - inUse - workingReserveBytes) / bytesPerWorker)
    throw .notEnoughAddressSpace(threads: threads, neededBytes: needed, limitBytes: limit, inUseBytes: inUse,
                                 affordable: min(affordable, threads - 1))
  }

  /// Starts `threads` threads that all wait at one gate (so that all are alive at once, as the workers will be),
  /// then opens it and joins every thread started; throws `.cannotCreateThread` if the system refused one.
  static func probeThreadCreation(_ threads: Int) throws(ThreadStartError) {
    let gate = ProbeGate()
    var started: [pthread_t] = []
    started.reserveCapacity(threads)
    var failure: Int32 = 0
    let context = Unmanaged.passRetained(gate)
    for _ in 0..<threads {
      var thread = pthread_t()
      failure = pthread_create(&thread, nil, { context in
        Unmanaged<ProbeGate>.fromOpaque(context!).takeUnretainedValue().waitUntilOpen()
        return nil
      }, context.toOpaque())
      if failure != 0 { break }
      started.append(thread)
    }
    gate.open()
    for thread in started { pthread_join(thread, nil) }
    context.release()
    if failure != 0 { throw .cannotCreateThread(threads: threads, started: started.count, errno: failure) }
  }

  /// The soft RLIMIT_AS in bytes, nil when unlimited.
  static func addressSpaceLimit() -> Int? {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {  // RLIM_INFINITY is ~0
      return nil
    }
    return Int(clamping: limit.rlim_cur)
  }

  /// The process's mapped address space now (VmSize: the first field of /proc/self/statm, in pages); 0 if unknown.
  static func addressSpaceInUse() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = statm.split(separator: " ").first.flatMap({ Int($0) }) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// glibc's default thread stack size (what `pthread_create(…, nil, …)` gives a thread).
  static var defaultStackBytes: Int {
    var attributes = pthread_attr_t()
    guard pthread_attr_init(&attributes) == 0 else { return 8 << 20 }
    defer { pthread_attr_destroy(&attributes) }
    var size = 0
    return pthread_attr_getstacksize(&attributes, &size) == 0 && size > 0 ? size : 8 << 20
  }

  private static func reserveAndRelease(_ bytes: Int) -> Bool {
    guard let address = mmap(nil, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
          address != MAP_FAILED else { return false }
    munmap(address, bytes)
    return true
  }
}

/// The gate the probe threads wait at.
private final class ProbeGate: @unchecked Sendable {
  private let condition = NSCondition()
  private var isOpen = false

  func waitUntilOpen() {
    condition.lock()
    defer { condition.unlock() }
    while !isOpen { condition.wait() }
  }

  func open() {
    condition.lock()
    isOpen = true
    condition.broadcast()
    condition.unlock()
  }
}
