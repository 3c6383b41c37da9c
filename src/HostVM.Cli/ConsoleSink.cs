namespace HostVM.Cli;

/// <summary>
/// The guest's serial output on our stdout: bytes are buffered and written at line ends, when the
/// buffer fills, or a few milliseconds after the first unwritten byte, so prompts appear without a
/// write per character and an idle console wakes nothing up.
/// </summary>
public sealed class ConsoleSink : IDisposable
{
    private readonly Stream _output;
    private readonly byte[] _buffer = new byte[8192];
    private readonly Lock _lock = new();
    private readonly Timer _timer;
    private const int FlushDelayMilliseconds = 20;

    private int _count;
    private bool _timerArmed;

    public ConsoleSink(Stream output)
    {
        _output = output;
        _timer = new Timer(_ => Flush(), null, Timeout.Infinite, Timeout.Infinite);
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

        _count = 0;
    }

    public void Dispose()
    {
        _timer.Dispose();
        Flush();
    }
}
