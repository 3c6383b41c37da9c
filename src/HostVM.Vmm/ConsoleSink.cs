namespace HostVM.Vmm;

/// <summary>
/// The guest's serial output on our stdout: bytes are buffered and written at line ends, when the
/// buffer fills, or a few milliseconds after the first unwritten byte, so prompts appear without a
/// write per character and an idle console wakes nothing up. Each written chunk also goes to
/// <see cref="Flushed"/> (the console socket's clients).
/// </summary>
public sealed class ConsoleSink : IDisposable
{
    private readonly byte[] _buffer = new byte[8192];
    private readonly Lock _lock = new();
    private readonly Timer _timer;
    private const int FlushDelayMilliseconds = 20;

    private int _count;
    private bool _timerArmed;

    private Stream _output;
    private bool _ownsOutput;

    public ConsoleSink(Stream output)
    {
        _output = output;
        _timer = new Timer(_ => Flush(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Called with every chunk written, under the sink's lock (so chunks arrive in order).</summary>
    public Action<ReadOnlySpan<byte>>? Flushed { get; set; }

    /// <summary>From now on output goes to <paramref name="output"/>; the sink owns it.</summary>
    public void Redirect(Stream output)
    {
        lock (_lock)
        {
            FlushLocked();
            if (_ownsOutput)
            {
                _output.Dispose();
            }

            _output = output;
            _ownsOutput = true;
        }
    }

    public void Write(byte b)
    {
        lock (_lock)
        {
            _buffer[_count++] = b;
            if (b == (byte)'\n' || _count == _buffer.Length)
            {
                FlushLocked();
            }
            else if (!_timerArmed)
            {
                _timerArmed = true;
                _timer.Change(FlushDelayMilliseconds, Timeout.Infinite);
            }
        }
    }

    public void Flush()
    {
        lock (_lock)
        {
            FlushLocked();
        }
    }

    private void FlushLocked()
    {
        _timerArmed = false;
        if (_count == 0)
        {
            return;
        }

        try
        {
            _output.Write(_buffer, 0, _count);
            _output.Flush();
        }
        catch (IOException)
        {
            // The reader went away (a closed pipe): the guest keeps running, its output is dropped.
        }

        Flushed?.Invoke(_buffer.AsSpan(0, _count));

        _count = 0;
    }

    public void Dispose()
    {
        _timer.Dispose();
        Flush();
        if (_ownsOutput)
        {
            _output.Dispose();
        }
    }
}
