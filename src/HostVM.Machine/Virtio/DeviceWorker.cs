namespace HostVM.Machine.Virtio;

/// <summary>
/// A device's own I/O thread: it runs <c>work</c> whenever signalled (a queue kick, a packet from the
/// network) or when the time <c>work</c> last asked for has passed (a rate limiter refilling). vCPU
/// threads only signal it, so they never wait for host I/O. A host exception in the work is reported
/// to <c>onError</c> and the thread carries on; it never takes the process down.
/// </summary>
public sealed class DeviceWorker : IDisposable
{
    private readonly Func<TimeSpan?> _work;
    private readonly Action<Exception> _onError;
    private readonly AutoResetEvent _signal = new(false);
    private readonly Thread _thread;
    // Held while work runs: a quiesce that takes it knows nothing is in flight.
    private readonly Lock _gate = new();
    private volatile bool _stopping;
    private volatile bool _signalled;
    private volatile bool _busy;
    private int _quiesced;
    private bool _missed; // woken while quiesced: runs when the quiesce ends

    /// <param name="work">Does what is pending; returns when to run again if nothing signals (null = only when signalled).</param>
    public DeviceWorker(string name, Func<TimeSpan?> work, Action<Exception> onError)
    {
        _work = work;
        _onError = onError;
        _thread = new Thread(Run) { Name = name, IsBackground = true };
        _thread.Start();
    }

    /// <summary>False while the thread may still touch guest memory (a Dispose that timed out, host I/O stuck).</summary>
    public bool Stopped => !_thread.IsAlive;

    public void Signal()
    {
        _signalled = true;
        _signal.Set();
    }

    /// <summary>
    /// Nothing to do: not signalled since the work last ran, not running it, and not waiting to run it
    /// again at a time it asked for (a rate limiter). For tests, which must wait until a device is done.
    /// </summary>
    internal bool Idle => !_signalled && !_busy;

    private void Run()
    {
        TimeSpan? wait = null;
        while (!_stopping)
        {
            if (wait is { } w)
            {
                if (w > TimeSpan.Zero)
                {
                    // WaitOne truncates to whole milliseconds; rounding up keeps a short wait from spinning.
                    _signal.WaitOne(TimeSpan.FromMilliseconds(Math.Ceiling(w.TotalMilliseconds)));
                }
            }
            else
            {
                _signal.WaitOne();
            }

            if (_stopping)
            {
                break;
            }

            lock (_gate)
            {
                if (_quiesced > 0)
                {
                    _missed = true;
                    wait = null;
                    continue;
                }

                _busy = true; // before clearing _signalled: Idle must never see neither
                _signalled = false;
                try
                {
                    wait = _work();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    wait = null;
                    _onError(e);
                }
                finally
                {
                    _busy = wait is not null;
                }
            }
        }
    }

    /// <summary>
    /// Waits until the work in flight (if any) has returned (its used-ring entries and interrupts are
    /// written by then) and keeps the thread from starting more until <see cref="Unquiesce"/>. Nests.
    /// Not for the worker's own thread.
    /// </summary>
    public void Quiesce()
    {
        lock (_gate)
        {
            _quiesced++;
        }
    }

    /// <summary>Ends one <see cref="Quiesce"/>; the last one lets the thread look for work again.</summary>
    public void Unquiesce()
    {
        lock (_gate)
        {
            if (_quiesced == 0)
            {
                throw new InvalidOperationException("The device worker is not quiesced.");
            }

            _quiesced--;
            if (_quiesced > 0 || !_missed)
            {
                return;
            }

            _missed = false;
        }

        if (!_stopping)
        {
            Signal();
        }
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _signal.Set();
        // A worker stuck in host I/O keeps its event; disposing it under the thread would throw there.
        if (Thread.CurrentThread != _thread && _thread.Join(TimeSpan.FromSeconds(5)))
        {
            _signal.Dispose();
        }
    }
}
