using HostVM.Machine.Devices;
using HostVM.Machine.State;

namespace HostVM.Machine;

/// <summary>Saving and restoring the machine's state (<see cref="MachineState"/>); RAM goes apart.</summary>
public sealed partial class VirtualMachine
{
    private static readonly TimeSpan ParkTimeout = TimeSpan.FromSeconds(10);

    private readonly Lock _deviceQuiesce = new();
    private bool _devicesQuiesced;
    private int _parked; // hart threads waiting in the pause (under _runLock)

    /// <summary>The HTIF window a bare-metal test program uses, if the boot mapped one.</summary>
    private HtifDevice? Htif => Bus.Regions.Select(r => r.Device).OfType<HtifDevice>().FirstOrDefault();

    /// <summary>
    /// The machine's state, on a paused machine only: waits until every hart has stopped at a block
    /// boundary (the devices were quiesced by <see cref="Pause"/>). RAM is not part of it: save it apart,
    /// while the machine stays paused.
    /// </summary>
    public MachineState SaveState()
    {
        lock (_runLock)
        {
            if (!_paused || Exit is not null)
            {
                throw new InvalidOperationException(Exit is null
                    ? "Only a paused machine can be saved: pause it first."
                    : $"The machine has ended ({Exit.Reason}); there is nothing to save.");
            }

            WaitForHartsParked();
        }

        QuiesceDevices();
        return new MachineState(
            Ram.Size,
            [.. Harts.Select(h => h.SaveState())],
            Clock.SaveState(),
            Clint.SaveState(),
            Plic.SaveState(),
            Uart.SaveState(),
            Rtc.SaveState(),
            Htif?.SaveState(),
            [.. VirtioTransports.Select(t => t.SaveState())]);
    }

    /// <summary>
    /// Puts a saved state into this machine, built from the same configuration, before <see cref="Start"/>
    /// or while paused. Load the RAM first: decoded code is dropped here, so none is left from the old
    /// contents. A state for another shape of machine (harts, RAM size, devices in the slots) is refused
    /// with what differs, before anything changes.
    /// </summary>
    public void RestoreState(MachineState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckShape(state);
        lock (_runLock)
        {
            if (Exit is not null)
            {
                throw new InvalidOperationException($"The machine has ended ({Exit.Reason}); build a new one to restore into.");
            }

            if (_threads.Count > 0 && !_paused)
            {
                throw new InvalidOperationException("A running machine cannot be restored: pause it first, or restore before starting it.");
            }

            WaitForHartsParked();
        }

        for (int i = 0; i < Harts.Count; i++)
        {
            Harts[i].RestoreState(state.Harts[i]);
        }

        Code.Clear();
        Clock.RestoreState(state.Clock);
        Clint.RestoreState(state.Clint);
        Uart.RestoreState(state.Uart);
        Rtc.RestoreState(state.Rtc);
        if (state.Htif is { } htif)
        {
            Htif!.RestoreState(htif);
        }

        for (int i = 0; i < VirtioTransports.Count; i++)
        {
            VirtioTransports[i].RestoreState(state.Virtio[i]);
        }

        // Last: the transports re-drive their lines, and the PLIC's saved pending bits must win.
        Plic.RestoreState(state.Plic);
    }

    private void CheckShape(MachineState state)
    {
        var differences = new List<string>();
        if (state.MemorySize != Ram.Size)
        {
            differences.Add($"RAM is {state.MemorySize / MachineConfiguration.MiB} MiB in the state, {Ram.Size / MachineConfiguration.MiB} MiB here");
        }

        if (state.Harts.Length != Harts.Count)
        {
            differences.Add($"{state.Harts.Length} harts in the state, {Harts.Count} here");
        }

        var saved = state.Virtio.Select(t => t.DeviceType.ToString()).ToList();
        var here = VirtioTransports.Select(t => t.Device.Type.ToString()).ToList();
        if (!saved.SequenceEqual(here))
        {
            differences.Add($"virtio slots hold [{string.Join(", ", saved)}] in the state, [{string.Join(", ", here)}] here");
        }

        if ((state.Htif is null) != (Htif is null))
        {
            differences.Add(state.Htif is null ? "this machine has an HTIF window, the state none" : "the state has an HTIF window, this machine none");
        }

        if (differences.Count > 0)
        {
            throw new ArgumentException($"The state is for another shape of machine: {string.Join("; ", differences)}.", nameof(state));
        }
    }

    /// <summary>Under _runLock: waits until every hart thread that still runs waits in the pause.</summary>
    private void WaitForHartsParked()
    {
        var deadline = DateTime.UtcNow + ParkTimeout;
        while (_parked < _threads.Count(t => t.IsAlive) && Exit is null)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"The harts did not stop within {ParkTimeout.TotalSeconds} s: {string.Join("; ", DescribeHarts())}");
            }

            Monitor.Wait(_runLock, TimeSpan.FromMilliseconds(Math.Min(50, left.TotalMilliseconds)));
        }
    }

    /// <summary>Called by a hart thread under _runLock while it waits in the pause.</summary>
    private void WaitParked()
    {
        _parked++;
        Monitor.PulseAll(_runLock); // a saver may be waiting for the last hart
        try
        {
            Monitor.Wait(_runLock);
        }
        finally
        {
            _parked--;
        }
    }

    /// <summary>Lets each device finish its request in flight and take no more (a pause; a save).</summary>
    private void QuiesceDevices()
    {
        lock (_deviceQuiesce)
        {
            if (_devicesQuiesced)
            {
                return;
            }

            foreach (var t in VirtioTransports)
            {
                t.Device.Quiesce();
            }

            _devicesQuiesced = true;
        }
    }

    /// <summary>Ends <see cref="QuiesceDevices"/>: kicks that came meanwhile are served now.</summary>
    private void ResumeDevices()
    {
        lock (_deviceQuiesce)
        {
            if (!_devicesQuiesced)
            {
                return;
            }

            foreach (var t in VirtioTransports)
            {
                t.Device.Unquiesce();
            }

            _devicesQuiesced = false;
        }
    }
}
