using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Records the level of each interrupt source. Thread-safe: virtio devices raise their line from
/// their own I/O threads while the test thread reads it.
/// </summary>
internal sealed class RecordingInterruptController : IInterruptController
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, bool> _levels = [];
    private int _raised;

    /// <summary>How many times any line was set high.</summary>
    public int Raised
    {
        get
        {
            lock (_lock)
            {
                return _raised;
            }
        }
    }

    public bool this[int source]
    {
        get
        {
            lock (_lock)
            {
                return _levels.TryGetValue(source, out bool level) && level;
            }
        }
    }

    public void SetIrq(int source, bool level)
    {
        lock (_lock)
        {
            _levels[source] = level;
            if (level)
            {
                _raised++;
            }
        }
    }
}
