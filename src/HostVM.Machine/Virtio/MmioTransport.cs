using System.Collections.Immutable;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Virtio;

/// <summary>
/// The virtio-mmio transport (Virtio 1.2 §4.2): the register window through which the driver finds a
/// device, negotiates features, sets up queues and kicks them. Version 2 (modern) by default, version 1
/// (legacy: 32 feature bits, page-frame queue addresses) on request, as QEMU 7.2 still defaults to.
/// Registers are 32-bit; other widths read 0 and are ignored, except in the configuration space.
/// </summary>
public sealed class MmioTransport : IMmioDevice, IPersistent<MmioTransportState>
{
    public const uint MagicValue = 0x7472_6976; // "virt"
    public const uint VendorId = 0x4d56_5648;   // "HVVM"

    public const ulong RegMagic = 0x000;
    public const ulong RegVersion = 0x004;
    public const ulong RegDeviceId = 0x008;
    public const ulong RegVendorId = 0x00c;
    public const ulong RegDeviceFeatures = 0x010;
    public const ulong RegDeviceFeaturesSel = 0x014;
    public const ulong RegDriverFeatures = 0x020;
    public const ulong RegDriverFeaturesSel = 0x024;
    public const ulong RegLegacyGuestPageSize = 0x028;
    public const ulong RegQueueSel = 0x030;
    public const ulong RegQueueNumMax = 0x034;
    public const ulong RegQueueNum = 0x038;
    public const ulong RegLegacyQueueAlign = 0x03c;
    public const ulong RegLegacyQueuePfn = 0x040;
    public const ulong RegQueueReady = 0x044;
    public const ulong RegQueueNotify = 0x050;
    public const ulong RegInterruptStatus = 0x060;
    public const ulong RegInterruptAck = 0x064;
    public const ulong RegStatus = 0x070;
    public const ulong RegQueueDescLow = 0x080;
    public const ulong RegQueueDescHigh = 0x084;
    public const ulong RegQueueDriverLow = 0x090;
    public const ulong RegQueueDriverHigh = 0x094;
    public const ulong RegQueueDeviceLow = 0x0a0;
    public const ulong RegQueueDeviceHigh = 0x0a4;
    public const ulong RegConfigGeneration = 0x0fc;
    public const ulong ConfigOffset = 0x100;

    public const uint InterruptUsedBuffer = 1;
    public const uint InterruptConfigChanged = 2;

    private readonly VirtioDevice _device;
    private readonly GuestMemory _memory;
    private readonly IInterruptController _irqController;
    private readonly int _irq;
    private readonly Lock _lock = new();
    private readonly Lock _lifecycle = new();
    private int _generation;
    private readonly QueueRegisters[] _queues;
    private readonly byte[] _config;
    private uint _status;
    private uint _interruptStatus;
    private uint _deviceFeaturesSel;
    private uint _driverFeaturesSel;
    private ulong _driverFeatures;
    private uint _queueSel;
    private uint _configGeneration;
    private uint _guestPageSize = 4096;
    private bool _active;
    private string? _error;
    private IReadOnlyList<Virtqueue?> _rings = []; // the queues the device got at DRIVER_OK, for saving

    public MmioTransport(VirtioDevice device, GuestMemory memory, IInterruptController irqController, int irq, bool legacy = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        _device = device;
        _memory = memory;
        _irqController = irqController;
        _irq = irq;
        Legacy = legacy;
        _queues = new QueueRegisters[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new QueueRegisters();
        }

        _config = new byte[device.ConfigSize];
        device.Transport = this;
    }

    public VirtioDevice Device => _device;

    public bool Legacy { get; }

    public int Irq => _irq;

    /// <summary>Everything this transport offers: the device's bits, the ring bits and (modern) VERSION_1.</summary>
    public ulong OfferedFeatures => _device.DeviceFeatures | VirtioFeatures.Transport | (Legacy ? 0 : VirtioFeatures.Version1);

    public uint Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    public uint InterruptStatus
    {
        get
        {
            lock (_lock)
            {
                return _interruptStatus;
            }
        }
    }

    /// <summary>Why the device needs a reset, or null.</summary>
    public string? Error
    {
        get
        {
            lock (_lock)
            {
                return _error;
            }
        }
    }

    public ulong Read(ulong offset, int size)
    {
        if (offset >= ConfigOffset)
        {
            return ReadConfig((int)(offset - ConfigOffset), size);
        }

        if (size != 4)
        {
            return 0;
        }

        lock (_lock)
        {
            var q = SelectedQueue;
            return offset switch
            {
                RegMagic => MagicValue,
                RegVersion => Legacy ? 1u : 2u,
                RegDeviceId => (uint)_device.Type,
                RegVendorId => VendorId,
                RegDeviceFeatures => _deviceFeaturesSel switch
                {
                    0 => (uint)OfferedFeatures,
                    1 => (uint)(OfferedFeatures >> 32),
                    _ => 0,
                },
                RegQueueNumMax => q is null ? 0u : _device.MaxQueueSize,
                RegLegacyQueuePfn when Legacy => q?.Pfn ?? 0,
                RegQueueReady when !Legacy => q is { Ready: true } ? 1u : 0u,
                RegInterruptStatus => _interruptStatus,
                RegStatus => _status,
                RegConfigGeneration when !Legacy => _configGeneration,
                _ => 0,
            };
        }
    }

    public void Write(ulong offset, int size, ulong value)
    {
        if (offset >= ConfigOffset)
        {
            WriteConfig((int)(offset - ConfigOffset), size, value);
            return;
        }

        if (size != 4)
        {
            return;
        }

        uint v = (uint)value;
        if (offset == RegQueueNotify)
        {
            Notify(v);
            return;
        }

        bool reset = false;
        VirtioActivation? activation = null;
        int generation;
        lock (_lock)
        {
            generation = _generation;
            var q = SelectedQueue;
            switch (offset)
            {
                case RegDeviceFeaturesSel:
                    _deviceFeaturesSel = v;
                    break;
                case RegDriverFeaturesSel:
                    _driverFeaturesSel = v;
                    break;
                case RegDriverFeatures when (_status & (VirtioStatus.FeaturesOk | VirtioStatus.DriverOk)) == 0:
                    if (_driverFeaturesSel < 2)
                    {
                        int shift = (int)_driverFeaturesSel * 32;
                        _driverFeatures = (_driverFeatures & ~(0xffff_ffffUL << shift)) | ((ulong)v << shift);
                    }

                    break;
                case RegLegacyGuestPageSize when Legacy:
                    _guestPageSize = v;
                    break;
                case RegQueueSel:
                    _queueSel = v;
                    break;
                case RegQueueNum when q is not null && !q.Live(Legacy):
                    q.Size = v;
                    break;
                case RegLegacyQueueAlign when Legacy && q is not null && q.Pfn == 0:
                    q.Align = v;
                    break;
                case RegLegacyQueuePfn when Legacy && q is not null:
                    SetLegacyPfn(q, v);
                    break;
                case RegQueueReady when !Legacy && q is not null:
                    q.Ready = (v & 1) != 0;
                    break;
                case RegQueueDescLow when q is not null && !q.Live(Legacy):
                    q.Desc = (q.Desc & ~0xffff_ffffUL) | v;
                    break;
                case RegQueueDescHigh when q is not null && !q.Live(Legacy):
                    q.Desc = (q.Desc & 0xffff_ffffUL) | ((ulong)v << 32);
                    break;
                case RegQueueDriverLow when q is not null && !q.Live(Legacy):
                    q.Avail = (q.Avail & ~0xffff_ffffUL) | v;
                    break;
                case RegQueueDriverHigh when q is not null && !q.Live(Legacy):
                    q.Avail = (q.Avail & 0xffff_ffffUL) | ((ulong)v << 32);
                    break;
                case RegQueueDeviceLow when q is not null && !q.Live(Legacy):
                    q.Used = (q.Used & ~0xffff_ffffUL) | v;
                    break;
                case RegQueueDeviceHigh when q is not null && !q.Live(Legacy):
                    q.Used = (q.Used & 0xffff_ffffUL) | ((ulong)v << 32);
                    break;
                case RegInterruptAck:
                    _interruptStatus &= ~v;
                    _irqController.SetIrq(_irq, _interruptStatus != 0);
                    break;
                case RegStatus:
                    if (v == 0)
                    {
                        reset = true;
                    }
                    else
                    {
                        activation = WriteStatus(v);
                    }

                    break;
            }
        }

        // The device is called outside the register lock: a reset waits for its I/O thread, which may
        // itself be raising an interrupt through this transport.
        if (reset || activation is not null)
        {
            // Resets and activations reach the device one at a time and in order: a reset from one
            // vCPU racing another's DRIVER_OK must not leave the device running after the reset.
            lock (_lifecycle)
            {
                if (reset)
                {
                    DoReset();
                }
                else if (activation is not null && Volatile.Read(ref _generation) == generation)
                {
                    Activate(activation);
                }
            }
        }
    }

    private QueueRegisters? SelectedQueue => _queueSel < _queues.Length ? _queues[_queueSel] : null;

    private void SetLegacyPfn(QueueRegisters q, uint pfn)
    {
        q.Pfn = pfn;
        if (pfn == 0)
        {
            return;
        }

        // Legacy layout (Virtio 1.2 §2.7.2 legacy interface): descriptors, then the available ring,
        // then the used ring at the next QueueAlign boundary, from pfn × GuestPageSize.
        ulong size = q.Size;
        ulong align = q.Align is 0 or > 65536 || (q.Align & (q.Align - 1)) != 0 ? 4096 : q.Align;
        q.Desc = (ulong)pfn * _guestPageSize;
        q.Avail = q.Desc + (size * Virtqueue.DescriptorSize);
        q.Used = (q.Avail + 6 + (2 * size) + align - 1) & ~(align - 1);
    }

    private VirtioActivation? WriteStatus(uint v)
    {
        uint old = _status;
        uint added = v & ~old;
        uint next = (v & ~VirtioStatus.DeviceNeedsReset) | (old & VirtioStatus.DeviceNeedsReset);
        if ((added & VirtioStatus.FeaturesOk) != 0 && !FeaturesAcceptable())
        {
            next &= ~VirtioStatus.FeaturesOk; // the driver reads it back and gives up, as §3.1.1 says
        }

        _status = next;
        if ((added & VirtioStatus.DriverOk) == 0 || _active || (next & VirtioStatus.DeviceNeedsReset) != 0)
        {
            return null;
        }

        if (!Legacy && (next & VirtioStatus.FeaturesOk) == 0)
        {
            return null; // modern drivers must negotiate first
        }

        ulong features = _driverFeatures & OfferedFeatures;
        var queues = new Virtqueue?[_queues.Length];
        for (int i = 0; i < _queues.Length; i++)
        {
            var q = _queues[i];
            if (!q.Live(Legacy))
            {
                continue;
            }

            if (q.Size == 0 || q.Size > _device.MaxQueueSize)
            {
                SetNeedsReset($"queue {i}: size {q.Size} is not 1 to {_device.MaxQueueSize}");
                return null;
            }

            try
            {
                queues[i] = Virtqueue.Create(_memory, (ushort)q.Size, q.Desc, q.Avail, q.Used, (features & VirtioFeatures.RingEventIdx) != 0);
            }
            catch (VirtqueueException e)
            {
                SetNeedsReset($"queue {i}: {e.Message}");
                return null;
            }
        }

        _active = true;
        _rings = queues;
        return new VirtioActivation(queues, features, Legacy);
    }

    private bool FeaturesAcceptable()
    {
        if ((_driverFeatures & ~OfferedFeatures) != 0)
        {
            return false;
        }

        return Legacy || (_driverFeatures & VirtioFeatures.Version1) != 0;
    }

    private void Activate(VirtioActivation activation)
    {
        try
        {
            _device.Activate(activation);
        }
        catch (VirtqueueException e)
        {
            NeedsReset(e.Message);
        }
    }

    private void DoReset()
    {
        _device.Reset();
        lock (_lock)
        {
            _generation++;
            _guestPageSize = 4096;
            _status = 0;
            _interruptStatus = 0;
            _driverFeatures = 0;
            _deviceFeaturesSel = 0;
            _driverFeaturesSel = 0;
            _queueSel = 0;
            _active = false;
            _rings = [];
            _error = null;
            foreach (var q in _queues)
            {
                q.Clear();
            }

            _irqController.SetIrq(_irq, false);
        }
    }

    private void Notify(uint queue)
    {
        bool live;
        lock (_lock)
        {
            live = _active && (_status & VirtioStatus.DeviceNeedsReset) == 0;
        }

        if (live && queue < _queues.Length)
        {
            _device.Notify((int)queue);
        }
    }

    private ulong ReadConfig(int offset, int size)
    {
        if (offset + size > _config.Length)
        {
            return 0;
        }

        lock (_lock)
        {
            _device.ReadConfig(_config);
            ulong v = 0;
            for (int i = size - 1; i >= 0; i--)
            {
                v = (v << 8) | _config[offset + i];
            }

            return v;
        }
    }

    private void WriteConfig(int offset, int size, ulong value)
    {
        if (offset + size > _config.Length)
        {
            return;
        }

        Span<byte> bytes = stackalloc byte[8];
        for (int i = 0; i < size; i++)
        {
            bytes[i] = (byte)(value >> (8 * i));
        }

        _device.WriteConfig(offset, bytes[..size]);
    }

    internal void RaiseInterrupt(uint cause)
    {
        lock (_lock)
        {
            _interruptStatus |= cause;
            _irqController.SetIrq(_irq, true);
        }
    }

    internal void ConfigChanged()
    {
        lock (_lock)
        {
            _configGeneration++;
            if ((_status & VirtioStatus.DriverOk) != 0)
            {
                _interruptStatus |= InterruptConfigChanged;
                _irqController.SetIrq(_irq, true);
            }
        }
    }

    internal void NeedsReset(string reason)
    {
        lock (_lock)
        {
            SetNeedsReset(reason);
        }
    }

    private void SetNeedsReset(string reason)
    {
        if ((_status & VirtioStatus.DeviceNeedsReset) != 0)
        {
            return;
        }

        _error = reason;
        _status |= VirtioStatus.DeviceNeedsReset;
        if ((_status & VirtioStatus.DriverOk) != 0)
        {
            _interruptStatus |= InterruptConfigChanged;
            _irqController.SetIrq(_irq, true);
        }
    }

    /// <summary>
    /// The registers, each queue's ring indices and the device's own state, with the device quiesced so
    /// that no request is half done. Requests the device holds unserved are saved as not yet taken.
    /// </summary>
    public MmioTransportState SaveState()
    {
        _device.Quiesce();
        try
        {
            lock (_lifecycle)
            {
                var device = _device.SaveState();
                var held = Enumerable.Range(0, _queues.Length).Select(_device.HeldRequests).ToArray();
                lock (_lock)
                {
                    var queues = _queues.Select((q, i) =>
                    {
                        var ring = i < _rings.Count ? _rings[i]?.SaveState() : null;
                        if (ring is not null && held[i] > 0)
                        {
                            ring = ring with { LastAvail = (ushort)(ring.LastAvail - held[i]) };
                        }

                        return new MmioQueueState(q.Size, q.Ready, q.Pfn, q.Align, q.Desc, q.Avail, q.Used, ring);
                    });
                    return new MmioTransportState(
                        _device.Type, Legacy, _status, _interruptStatus, _deviceFeaturesSel, _driverFeaturesSel, _driverFeatures,
                        _queueSel, _configGeneration, _guestPageSize, _active, _error, [.. queues], device);
                }
            }
        }
        finally
        {
            _device.Unquiesce();
        }
    }

    /// <summary>
    /// Puts a saved slot back: resets the device, takes the registers, the device's state and (if the
    /// driver had started it) rebuilds its queues at the saved indices and starts it again. The saved
    /// slot must be of the same device type and transport version.
    /// </summary>
    public void RestoreState(MmioTransportState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.DeviceType != _device.Type || state.Legacy != Legacy || state.Queues.Length != _queues.Length)
        {
            throw new ArgumentException(
                $"The saved slot holds a {state.DeviceType} device ({(state.Legacy ? "legacy" : "modern")} transport, {state.Queues.Length} queues); "
                + $"this one a {_device.Type} device ({(Legacy ? "legacy" : "modern")}, {_queues.Length} queues).", nameof(state));
        }

        _device.Quiesce();
        try
        {
            lock (_lifecycle)
            {
                _device.Reset();
                VirtioActivation? activation;
                lock (_lock)
                {
                    _generation++;
                    _status = state.Status;
                    _interruptStatus = state.InterruptStatus;
                    _deviceFeaturesSel = state.DeviceFeaturesSelect;
                    _driverFeaturesSel = state.DriverFeaturesSelect;
                    _driverFeatures = state.DriverFeatures;
                    _queueSel = state.QueueSelect;
                    _configGeneration = state.ConfigGeneration;
                    _guestPageSize = state.GuestPageSize;
                    _error = state.Error;
                    for (int i = 0; i < _queues.Length; i++)
                    {
                        _queues[i].Restore(state.Queues[i]);
                    }

                    activation = state.Active ? RebuildQueues(state) : null;
                    _active = state.Active;
                    _irqController.SetIrq(_irq, _interruptStatus != 0);
                }

                _device.RestoreState(state.Device);
                if (activation is not null)
                {
                    _device.Activate(activation);
                }
            }
        }
        finally
        {
            _device.Unquiesce();
        }
    }

    /// <summary>
    /// The queues of a saved running device, at their saved indices; null when the device had stopped
    /// (DEVICE_NEEDS_RESET: it serves nothing until the driver resets it, so it is not started again).
    /// </summary>
    private VirtioActivation? RebuildQueues(MmioTransportState state)
    {
        var queues = new Virtqueue?[_queues.Length];
        _rings = queues;
        if ((_status & VirtioStatus.DeviceNeedsReset) != 0)
        {
            return null;
        }

        ulong features = _driverFeatures & OfferedFeatures;
        for (int i = 0; i < _queues.Length; i++)
        {
            var q = _queues[i];
            if (state.Queues[i].Ring is not { } ring)
            {
                continue;
            }

            try
            {
                queues[i] = Virtqueue.Create(_memory, (ushort)q.Size, q.Desc, q.Avail, q.Used, (features & VirtioFeatures.RingEventIdx) != 0);
            }
            catch (VirtqueueException e)
            {
                throw new ArgumentException($"The saved queue {i} does not fit this machine: {e.Message}", nameof(state), e);
            }

            queues[i]!.RestoreState(ring);
        }

        return new VirtioActivation(queues, features, Legacy);
    }

    /// <summary>The per-queue registers as the driver left them.</summary>
    private sealed class QueueRegisters
    {
        public uint Size { get; set; }

        public bool Ready { get; set; }

        public uint Pfn { get; set; }

        public uint Align { get; set; } = 4096;

        public ulong Desc { get; set; }

        public ulong Avail { get; set; }

        public ulong Used { get; set; }

        /// <summary>Set up and enabled: its layout may no longer change.</summary>
        public bool Live(bool legacy) => legacy ? Pfn != 0 : Ready;

        public void Restore(MmioQueueState state)
        {
            Size = state.Size;
            Ready = state.Ready;
            Pfn = state.Pfn;
            Align = state.Align;
            Desc = state.Desc;
            Avail = state.Avail;
            Used = state.Used;
        }

        public void Clear()
        {
            Size = 0;
            Ready = false;
            Pfn = 0;
            Align = 4096;
            Desc = 0;
            Avail = 0;
            Used = 0;
        }
    }
}
