using System.Collections.Concurrent;
using HostVM.Networking;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>A packet port that records what the NIC sends and lets the test deliver frames to it.</summary>
internal sealed class LoopbackPacketPort : IPacketPort
{
    private IFrameReceiver? _receiver;

    public bool LinkUp { get; set; } = true;

    public ConcurrentQueue<byte[]> Sent { get; } = new();

    public IFrameReceiver Receiver => _receiver ?? throw new InvalidOperationException("the NIC has not started the port");

    public int StartCalls { get; private set; }

    public void Start(IFrameReceiver receiver)
    {
        _receiver = receiver;
        StartCalls++;
    }

    public void Send(ReadOnlySpan<byte> frame) => Sent.Enqueue(frame.ToArray());

    public void Dispose()
    {
    }
}
