using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

/// <summary>Records the level of each interrupt source and every change.</summary>
internal sealed class FakeInterruptController : IInterruptController
{
    private readonly Dictionary<int, bool> _levels = [];

    public List<(int Source, bool Level)> History { get; } = [];

    public bool this[int source] => _levels.TryGetValue(source, out bool level) && level;

    public void SetIrq(int source, bool level)
    {
        _levels[source] = level;
        History.Add((source, level));
    }
}
