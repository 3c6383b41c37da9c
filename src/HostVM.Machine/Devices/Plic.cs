using System.Numerics;
using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Devices;

/// <summary>
/// The platform-level interrupt controller of QEMU's virt board (SiFive PLIC layout). Sources are
/// level-triggered. A source's gateway forwards a request (sets its pending bit) when the line is high
/// and the source is not in service; a claim takes the highest-priority pending source that the context
/// enables above its threshold (ties go to the lowest id), clears its pending bit and puts it in service;
/// a completion takes it out of service and, if the line is still high, makes it pending again.
/// A line that drops before its request is claimed withdraws the request, so the guest is not sent to
/// look for an interrupt that is no longer there.
/// Contexts: 2 per hart, 2h = M-mode (drives MEIP), 2h + 1 = S-mode (drives SEIP).
/// Registers are 32 bits; 8-byte accesses act as two 32-bit ones, narrower writes are ignored.
/// </summary>
public sealed class Plic : IMmioDevice, IPersistent<PlicState>, IInterruptController
{
    public const ulong DefaultBase = 0x0C00_0000;
    public const ulong Size = 0x0400_0000;

    /// <summary>priority[source]: 32 bits per source; source 0 does not exist.</summary>
    public const ulong PriorityOffset = 0x00_0000;

    /// <summary>Pending bits, one per source, read-only.</summary>
    public const ulong PendingOffset = 0x00_1000;

    /// <summary>enable[context]: one bit per source, <see cref="EnableStride"/> bytes per context.</summary>
    public const ulong EnableOffset = 0x00_2000;
    public const ulong EnableStride = 0x80;

    /// <summary>Per-context threshold (+0) and claim/complete (+4), <see cref="ContextStride"/> bytes per context.</summary>
    public const ulong ContextOffset = 0x20_0000;
    public const ulong ContextStride = 0x1000;
    public const ulong ThresholdRegister = 0x0;
    public const ulong ClaimCompleteRegister = 0x4;

    public const int DefaultSourceCount = 96;

    /// <summary>The layout has pending bits for 1024 sources.</summary>
    public const int MaxSourceCount = 1024;

    /// <summary>Priorities and thresholds have 3 bits (levels 0..7, as QEMU virt); 0 never interrupts.</summary>
    public const uint PriorityMask = 0x7;

    public const int ContextsPerHart = 2;

    /// <summary>The layout has threshold/claim blocks for this many contexts.</summary>
    public const int MaxContexts = (int)((Size - ContextOffset) / ContextStride);

    private readonly IReadOnlyList<IHartInterrupts> _harts;
    private readonly int _words;
    private readonly Lock _lock = new();
    private readonly bool[] _output;
    private PlicState _state;

    /// <param name="harts">The harts in hart-id order: harts[i] owns contexts 2i (M) and 2i + 1 (S).</param>
    /// <param name="sourceCount">Source ids including the reserved id 0 (96: sources 1..95).</param>
    public Plic(IReadOnlyList<IHartInterrupts> harts, int sourceCount = DefaultSourceCount)
    {
        ArgumentNullException.ThrowIfNull(harts);
        if (sourceCount < 2 || sourceCount > MaxSourceCount)
        {
            throw new ArgumentOutOfRangeException(nameof(sourceCount), sourceCount, $"The PLIC has 2 to {MaxSourceCount} source ids (id 0 is reserved).");
        }

        if (harts.Count == 0 || harts.Count * ContextsPerHart > MaxContexts)
        {
            throw new ArgumentOutOfRangeException(nameof(harts), harts.Count, $"The PLIC serves 1 to {MaxContexts / ContextsPerHart} harts.");
        }

        _harts = harts;
        SourceCount = sourceCount;
        ContextCount = harts.Count * ContextsPerHart;
        _words = (sourceCount + 31) / 32;
        _output = new bool[ContextCount];
        _state = new PlicState(
            new uint[sourceCount],
            new uint[_words],
            new uint[_words],
            new uint[_words],
            new uint[ContextCount * _words],
            new uint[ContextCount]);
    }

    /// <summary>Source ids are 1 .. SourceCount - 1 (the device tree's riscv,ndev is SourceCount - 1).</summary>
    public int SourceCount { get; }

    public int ContextCount { get; }

    /// <summary>Drives source <paramref name="source"/>'s line. Ids outside 1 .. SourceCount - 1 are ignored.</summary>
    public void SetIrq(int source, bool level)
    {
        if (source <= 0 || source >= SourceCount)
        {
            return;
        }

        lock (_lock)
        {
            int word = source >> 5;
            uint bit = 1u << (source & 31);
            var s = _state;
            s.Level[word] = level ? s.Level[word] | bit : s.Level[word] & ~bit;
            if ((s.InService[word] & bit) == 0)
            {
                s.Pending[word] = level ? s.Pending[word] | bit : s.Pending[word] & ~bit;
            }

            UpdateOutputs();
        }
    }

    public ulong Read(ulong offset, int size)
    {
        lock (_lock)
        {
            if (size == 8)
            {
                return ReadWord(offset) | ((ulong)ReadWord(offset + 4) << 32);
            }

            uint word = ReadWord(offset & ~3UL);
            return RegisterBits.Extract(word, (int)(offset & 3), size);
        }
    }

    public void Write(ulong offset, int size, ulong value)
    {
        lock (_lock)
        {
            if (size == 8)
            {
                WriteWord(offset, (uint)value);
                WriteWord(offset + 4, (uint)(value >> 32));
            }
            else if (size == 4)
            {
                WriteWord(offset, (uint)value);
            }
        }
    }

    public PlicState SaveState()
    {
        lock (_lock)
        {
            return _state.DeepCopy();
        }
    }

    /// <summary>Restores the registers and re-drives every context's external-interrupt line.</summary>
    public void RestoreState(PlicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Priority.Length != SourceCount || state.Threshold.Length != ContextCount ||
            state.Level.Length != _words || state.Pending.Length != _words || state.InService.Length != _words ||
            state.Enable.Length != ContextCount * _words)
        {
            throw new ArgumentException(
                $"The snapshot's PLIC has {state.Priority.Length} sources and {state.Threshold.Length} contexts; " +
                $"this machine's has {SourceCount} and {ContextCount}.", nameof(state));
        }

        lock (_lock)
        {
            _state = state.DeepCopy();
            for (int context = 0; context < ContextCount; context++)
            {
                _output[context] = HasClaimable(context);
                DriveLine(context);
            }
        }
    }

    private uint ReadWord(ulong offset)
    {
        if ((offset & 3) != 0)
        {
            return 0;
        }

        var s = _state;
        if (offset < PendingOffset)
        {
            ulong source = (offset - PriorityOffset) / 4;
            return source < (ulong)SourceCount ? s.Priority[source] : 0;
        }

        if (offset < EnableOffset)
        {
            ulong word = (offset - PendingOffset) / 4;
            return word < (ulong)_words ? s.Pending[word] : 0;
        }

        if (offset < ContextOffset)
        {
            ulong context = (offset - EnableOffset) / EnableStride;
            ulong word = (offset - EnableOffset) % EnableStride / 4;
            return context < (ulong)ContextCount && word < (ulong)_words ? s.Enable[((int)context * _words) + (int)word] : 0;
        }

        if (offset < Size)
        {
            ulong context = (offset - ContextOffset) / ContextStride;
            ulong register = (offset - ContextOffset) % ContextStride;
            if (context < (ulong)ContextCount)
            {
                if (register == ThresholdRegister)
                {
                    return s.Threshold[context];
                }

                if (register == ClaimCompleteRegister)
                {
                    return (uint)Claim((int)context);
                }
            }
        }

        return 0;
    }

    private void WriteWord(ulong offset, uint value)
    {
        if ((offset & 3) != 0)
        {
            return;
        }

        var s = _state;
        if (offset < PendingOffset)
        {
            ulong source = (offset - PriorityOffset) / 4;
            if (source > 0 && source < (ulong)SourceCount)
            {
                s.Priority[source] = value & PriorityMask;
                UpdateOutputs();
            }

            return;
        }

        if (offset < EnableOffset)
        {
            return; // pending bits are read-only
        }

        if (offset < ContextOffset)
        {
            ulong context = (offset - EnableOffset) / EnableStride;
            ulong word = (offset - EnableOffset) % EnableStride / 4;
            if (context < (ulong)ContextCount && word < (ulong)_words)
            {
                s.Enable[((int)context * _words) + (int)word] = value & ValidSourceBits((int)word);
                UpdateOutputs();
            }

            return;
        }

        if (offset < Size)
        {
            ulong context = (offset - ContextOffset) / ContextStride;
            ulong register = (offset - ContextOffset) % ContextStride;
            if (context >= (ulong)ContextCount)
            {
                return;
            }

            if (register == ThresholdRegister)
            {
                s.Threshold[context] = value & PriorityMask;
                UpdateOutputs();
            }
            else if (register == ClaimCompleteRegister)
            {
                Complete((int)context, value);
            }
        }
    }

    /// <summary>The bits of enable/pending word <paramref name="word"/> that name real sources (never id 0).</summary>
    private uint ValidSourceBits(int word)
    {
        int first = word * 32;
        int count = Math.Clamp(SourceCount - first, 0, 32);
        uint bits = count == 32 ? uint.MaxValue : (1u << count) - 1;
        return word == 0 ? bits & ~1u : bits;
    }

    /// <summary>The best source this context may take now, or 0.</summary>
    private int BestCandidate(int context)
    {
        var s = _state;
        int best = 0;
        uint bestPriority = s.Threshold[context];
        for (int word = 0; word < _words; word++)
        {
            uint candidates = s.Pending[word] & s.Enable[(context * _words) + word] & ~s.InService[word];
            while (candidates != 0)
            {
                int source = (word * 32) + BitOperations.TrailingZeroCount(candidates);
                candidates &= candidates - 1;
                if (s.Priority[source] > bestPriority)
                {
                    best = source;
                    bestPriority = s.Priority[source];
                }
            }
        }

        return best;
    }

    private bool HasClaimable(int context) => BestCandidate(context) != 0;

    private int Claim(int context)
    {
        int source = BestCandidate(context);
        if (source != 0)
        {
            uint bit = 1u << (source & 31);
            _state.Pending[source >> 5] &= ~bit;
            _state.InService[source >> 5] |= bit;
            UpdateOutputs();
        }

        return source;
    }

    private void Complete(int context, uint source)
    {
        if (source == 0 || source >= (uint)SourceCount)
        {
            return;
        }

        int word = (int)(source >> 5);
        uint bit = 1u << (int)(source & 31);
        var s = _state;

        // The specification ignores a completion for a source the context does not enable
        // (Linux enables a masked source around its completion for this reason).
        if ((s.Enable[(context * _words) + word] & bit) == 0 || (s.InService[word] & bit) == 0)
        {
            return;
        }

        s.InService[word] &= ~bit;
        if ((s.Level[word] & bit) != 0)
        {
            s.Pending[word] |= bit;
        }

        UpdateOutputs();
    }

    /// <summary>Recomputes every context's "has a claimable interrupt" and tells harts about changes.</summary>
    private void UpdateOutputs()
    {
        for (int context = 0; context < ContextCount; context++)
        {
            bool level = HasClaimable(context);
            if (level != _output[context])
            {
                _output[context] = level;
                DriveLine(context);
            }
        }
    }

    private void DriveLine(int context)
    {
        var line = context % ContextsPerHart == 0 ? InterruptLine.MachineExternal : InterruptLine.SupervisorExternal;
        _harts[context / ContextsPerHart].SetInterruptLine(line, _output[context]);
    }
}
