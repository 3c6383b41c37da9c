namespace HostVM.Machine.Virtio;

/// <summary>What a virtio-blk device has done, for the host's statistics. Updated by the device's I/O thread.</summary>
public sealed class BlockStatistics
{
    private long _reads, _writes, _bytesRead, _bytesWritten, _flushes, _errors;

    public long Reads => Interlocked.Read(ref _reads);

    public long Writes => Interlocked.Read(ref _writes);

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public long Flushes => Interlocked.Read(ref _flushes);

    public long Errors => Interlocked.Read(ref _errors);

    internal void CountRead(long bytes)
    {
        Interlocked.Increment(ref _reads);
        Interlocked.Add(ref _bytesRead, bytes);
    }

    internal void CountWrite(long bytes)
    {
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _bytesWritten, bytes);
    }

    internal void CountFlush() => Interlocked.Increment(ref _flushes);

    internal void CountError() => Interlocked.Increment(ref _errors);
}
