namespace HostVM.Networking.Switch;

/// <summary>One direction of a <see cref="SwitchUplink"/>: hands every frame it receives to another port, counting them.</summary>
internal sealed class FrameRelay(IPacketPort target) : IFrameReceiver
{
    private long _frames;
    private long _bytes;

    public long Frames => Interlocked.Read(ref _frames);

    public long Bytes => Interlocked.Read(ref _bytes);

    public bool Receive(ReadOnlySpan<byte> frame)
    {
        // The target copies the frame or drops it (and counts that itself); either way it is off our hands.
        target.Send(frame);
        Interlocked.Increment(ref _frames);
        Interlocked.Add(ref _bytes, frame.Length);
        return true;
    }
}
