using System.Collections.Concurrent;
using HostVM.Networking.Switch;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>
/// The test's guest: the receiving end of a port (standing in for the NIC) that checks every frame
/// it gets, plus helpers to send frames and wait for answers. Either the NIC of a
/// <see cref="UserNetwork"/> of its own, or a port on a switch that other guests and a NAT uplink share.
/// </summary>
internal sealed class FakeGuest : IFrameReceiver, IDisposable
{
    private readonly BlockingCollection<ReceivedFrame> _frames = [];
    private readonly ConcurrentQueue<ReceivedFrame> _all = new();
    private readonly ConcurrentQueue<string> _problems = new();
    private readonly IPacketPort _port;
    private readonly UserNetwork? _network;

    static FakeGuest()
    {
        // The tests block threads while they play the guest, and xunit runs classes in parallel; on a
        // two-core machine the pool would start only two threads and add more slowly, delaying the
        // socket completions and timers under test by whole seconds.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }

    /// <summary>A guest (<see cref="Packets.GuestMac"/> at <see cref="Packets.Guest"/>) alone on a user network of its own.</summary>
    public FakeGuest(UserNetworkOptions? options = null)
    {
        _network = new UserNetwork(options);
        _port = _network;
        Mac = Packets.GuestMac;
        Address = Packets.Guest;
        _network.Start(this);
    }

    private FakeGuest(IPacketPort port, MacAddress mac, uint address)
    {
        _port = port;
        Mac = mac;
        Address = address;
        _port.Start(this);
    }

    /// <summary>The guest's own user network; only for a guest made with the public constructor.</summary>
    public UserNetwork Network => _network ?? throw new InvalidOperationException("This guest sits on a switch; it has no user network of its own.");

    public MacAddress Mac { get; }

    /// <summary>The address the guest sends from (0 before DHCP).</summary>
    public uint Address { get; set; }

    /// <summary>Every frame received so far, including those <see cref="WaitFor"/> skipped.</summary>
    public IReadOnlyCollection<ReceivedFrame> AllReceived => _all;

    /// <summary>When set and it returns true, the frame is refused as a full NIC queue would.</summary>
    public Func<ReceivedFrame, bool>? Drop { get; set; }

    /// <summary>A guest with <paramref name="mac"/> on switch <paramref name="switchName"/>.</summary>
    public static FakeGuest OnSwitch(string switchName, string runtimeDirectory, MacAddress mac, uint address = 0) =>
        new(SwitchPort.Open(switchName, runtimeDirectory), mac, address);

    public bool Receive(ReadOnlySpan<byte> frame)
    {
        var parsed = ReceivedFrame.Parse(frame.ToArray());
        if (parsed.Problem is not null)
        {
            _problems.Enqueue(parsed.Problem);
        }

        if (Drop?.Invoke(parsed) == true)
        {
            return false;
        }

        _all.Enqueue(parsed);
        _frames.Add(parsed);
        return true;
    }

    public void Send(byte[] frame) => _port.Send(frame);

    /// <summary>The next frame that matches, discarding others; fails the test after the timeout.</summary>
    public ReceivedFrame WaitFor(Func<ReceivedFrame, bool> match, int timeoutMilliseconds = 5000)
    {
        var deadline = Environment.TickCount64 + timeoutMilliseconds;
        while (true)
        {
            int left = (int)(deadline - Environment.TickCount64);
            if (left <= 0 || !_frames.TryTake(out var frame, left))
            {
                throw new TimeoutException("The fake guest did not receive the expected frame in time.");
            }

            if (match(frame))
            {
                return frame;
            }
        }
    }

    public ReceivedFrame? TryTake(int timeoutMilliseconds) => _frames.TryTake(out var frame, timeoutMilliseconds) ? frame : null;

    /// <summary>Asserts every frame the network sent was well-formed with correct checksums.</summary>
    public void AssertNoProblems() => Assert.Empty(_problems);

    public void Dispose()
    {
        // The collection is left to the GC: a delivery already under way may still add one frame.
        _port.Dispose();
        AssertNoProblems();
    }
}
