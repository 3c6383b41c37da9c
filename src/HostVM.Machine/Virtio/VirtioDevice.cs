using HostVM.Machine.State;

namespace HostVM.Machine.Virtio;

/// <summary>
/// The device half of a virtio device: its type, features, configuration space and what it does with its
/// queues. The <see cref="MmioTransport"/> owns the registers and calls <see cref="Activate"/> when the
/// driver sets DRIVER_OK, <see cref="Reset"/> when it writes 0 to the status, and <see cref="Notify"/>
/// when it kicks a queue (on a vCPU thread: devices that touch host I/O hand work to their own thread).
/// </summary>
public abstract class VirtioDevice : IPersistent<VirtioDeviceState>, IDisposable
{
    private MmioTransport? _transport;

    protected VirtioDevice(VirtioDeviceType type, int queueCount, ushort maxQueueSize)
    {
        Type = type;
        QueueCount = queueCount;
        MaxQueueSize = maxQueueSize;
    }

    public VirtioDeviceType Type { get; }

    public int QueueCount { get; }

    public ushort MaxQueueSize { get; }

    /// <summary>The device-type feature bits offered (the transport adds the ring and version bits).</summary>
    public abstract ulong DeviceFeatures { get; }

    /// <summary>Bytes of device configuration space.</summary>
    public abstract int ConfigSize { get; }

    /// <summary>The reason the device stopped (DEVICE_NEEDS_RESET), for reports; null while healthy.</summary>
    public string? Error => _transport?.Error;

    internal MmioTransport? Transport
    {
        get => _transport;
        set => _transport = value;
    }

    /// <summary>Fills <paramref name="config"/> (ConfigSize bytes) with the current configuration space.</summary>
    public abstract void ReadConfig(Span<byte> config);

    /// <summary>The driver wrote <paramref name="data"/> at <paramref name="offset"/> of the configuration space.</summary>
    public virtual void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
    }

    /// <summary>The driver set DRIVER_OK: start serving the queues.</summary>
    public abstract void Activate(VirtioActivation activation);

    /// <summary>Stop touching the queues and guest memory; return only when nothing is in flight.</summary>
    public abstract void Reset();

    /// <summary>The driver made buffers available on <paramref name="queue"/>.</summary>
    public abstract void Notify(int queue);

    /// <summary>Call after pushing used buffers on <paramref name="queue"/>: interrupts the driver if it asked for it.</summary>
    protected void SignalUsed(Virtqueue queue)
    {
        if (queue.ShouldInterrupt())
        {
            _transport?.RaiseInterrupt(MmioTransport.InterruptUsedBuffer);
        }
    }

    /// <summary>The configuration space changed (e.g. a new balloon target): tell the driver.</summary>
    protected void SignalConfigChanged() => _transport?.ConfigChanged();

    /// <summary>The driver broke the rules: DEVICE_NEEDS_RESET, and the device stops until reset.</summary>
    protected void Fail(string reason) => _transport?.NeedsReset(reason);

    /// <summary>The device's own state: not its queues (the transport saves them) nor its backend.</summary>
    public abstract VirtioDeviceState SaveState();

    /// <summary>
    /// Takes a saved state of the same device type. The transport calls it between <see cref="Reset"/>
    /// and <see cref="Activate"/>, with the device quiesced.
    /// </summary>
    public abstract void RestoreState(VirtioDeviceState state);

    /// <summary>
    /// Requests the device took from <paramref name="queue"/> and holds unserved (waiting for a rate
    /// limiter, or a balloon statistics buffer kept until the host wants figures). A save records them as
    /// not taken yet, so a restored device takes them again from the available ring, which still holds
    /// them: the driver reuses a ring slot only after its request is used.
    /// </summary>
    public virtual int HeldRequests(int queue) => 0;

    /// <summary>
    /// Lets the request in flight finish (used-ring entry and interrupt written) and starts no other
    /// until <see cref="Unquiesce"/>: a save must not race with the device's thread. Kicks that arrive
    /// meanwhile are served after. Devices that work only on the caller's thread have nothing to wait for.
    /// </summary>
    public virtual void Quiesce()
    {
    }

    /// <summary>Ends one <see cref="Quiesce"/>.</summary>
    public virtual void Unquiesce()
    {
    }

    /// <summary>Nothing pending on the device's thread (for tests that wait until it is done).</summary>
    internal virtual bool Idle => true;

    /// <summary>The saved state as this device's type of state, or an error naming both.</summary>
    protected TState StateOf<TState>(VirtioDeviceState state)
        where TState : VirtioDeviceState
    {
        ArgumentNullException.ThrowIfNull(state);
        return state as TState
            ?? throw new ArgumentException($"A {state.GetType().Name} cannot be restored into a {GetType().Name}.", nameof(state));
    }

    /// <summary>After Dispose: true once nothing of the device can touch guest memory any more.</summary>
    public virtual bool Stopped => true;

    public virtual void Dispose() => GC.SuppressFinalize(this);
}
