using HostVM.Host.Api;

namespace HostVM.Host.Supervision;

/// <summary>The daemon's view of one block job on a VM's disk: what it is, how far it got, how it ended.</summary>
public sealed class DiskJob(string vmId, string vmName, string disk, string type, long total)
{
    private readonly Lock _lock = new();
    private string _state = "running";
    private string? _error;
    private long _done;
    private DateTimeOffset? _finishedAt;

    public string Id { get; } = Guid.NewGuid().ToString("N")[..12];

    public string VmId { get; } = vmId;

    public string Type { get; } = type;

    public string? Layer { get; set; }

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Cancels the daemon's own copy (a stopped VM's job); a running VM's is cancelled through its VMM.</summary>
    public CancellationTokenSource Cancel { get; } = new();

    public bool Busy
    {
        get
        {
            lock (_lock)
            {
                return _state == "running";
            }
        }
    }

    public void Progress(long done) => Interlocked.Exchange(ref _done, done);

    /// <summary>Ends the job once: a later call (a cancel racing the end) changes nothing.</summary>
    public bool Finish(string state, string? error = null)
    {
        lock (_lock)
        {
            if (_state != "running")
            {
                return false;
            }

            (_state, _error, _finishedAt) = (state, error, DateTimeOffset.UtcNow);
            if (state == "completed")
            {
                _done = total;
            }

            return true;
        }
    }

    public DiskJobView View()
    {
        lock (_lock)
        {
            return new DiskJobView(Id, vmName, disk, Type, _state, Interlocked.Read(ref _done), total, Layer, _error, StartedAt, _finishedAt);
        }
    }
}
