using System.Collections.Concurrent;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>
/// The test's guest: the receiving end of a <see cref="UserNetwork"/> (standing in for the NIC)
/// that checks every frame it gets, plus helpers to send frames and wait for answers.
/// </summary>
internal sealed class FakeGuest : IFrameReceiver, IDisposable
{
    private readonly BlockingCollection<ReceivedFrame> _frames = [];
    private readonly ConcurrentQueue<string> _problems = new();

    static FakeGuest()
    {
        // The tests block threads while they play the guest, and xunit runs classes in parallel; on a
        // two-core machine the pool would start only two threads and add more slowly, delaying the
        // socket completions and timers under test by whole seconds.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }

    public FakeGuest(UserNetworkOptions? options = null)
    {
        Network = new UserNetwork(options);
        Network.Start(this);
    }

    public UserNetwork Network { get; }

    /// <summary>When set and it returns true, the frame is refused as a full NIC queue would.</summary>
    public Func<ReceivedFrame, bool>? Drop { get; set; }

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

        _frames.Add(parsed);
        return true;
    }

    public void Send(byte[] frame) => Network.Send(frame);

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
        Network.Dispose();
        AssertNoProblems();
    }
}
