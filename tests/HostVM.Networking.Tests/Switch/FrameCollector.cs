using System.Collections.Concurrent;

namespace HostVM.Networking.Tests.Switch;

/// <summary>A NIC's receive side that keeps every frame for the test to look at.</summary>
internal sealed class FrameCollector : IFrameReceiver
{
    private readonly BlockingCollection<byte[]> frames = [];

    public bool Receive(ReadOnlySpan<byte> frame)
    {
        frames.Add(frame.ToArray());
        return true;
    }

    /// <summary>The next frame, or null when none came within <paramref name="timeout"/>.</summary>
    public byte[]? Next(TimeSpan timeout) => frames.TryTake(out var frame, timeout) ? frame : null;

    public byte[] Expect() => Next(TimeSpan.FromSeconds(5)) ?? throw new Xunit.Sdk.XunitException("No frame arrived within 5 s.");

    public void ExpectNothing() => Assert.Null(Next(TimeSpan.FromMilliseconds(300)));
}
