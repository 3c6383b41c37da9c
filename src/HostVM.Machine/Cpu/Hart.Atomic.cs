namespace HostVM.Machine.Cpu;

/// <summary>The A extension: LR/SC with a value-checked reservation, and AMOs as host atomics.</summary>
public sealed unsafe partial class Hart
{
    /// <summary>Runs an LR, SC or AMO. False when it trapped (the trap is already entered).</summary>
    private bool ExecuteAtomic(ref DecodedInsn ins, ulong pc)
    {
        ulong* x = _s->X;
        ulong address = x[ins.Rs1];
        ulong src = x[ins.Rs2];
        bool word = ins.Op <= Op.AmomaxuW;
        int size = word ? 4 : 8;

        switch (ins.Op)
        {
            case Op.LrW:
            case Op.LrD:
            {
                if ((address & (ulong)(size - 1)) != 0)
                {
                    EnterTrap((ulong)TrapCause.LoadMisaligned, address, pc);
                    return false;
                }

                ulong value;
                if (word)
                {
                    if (!Load(address, out int w))
                    {
                        RaiseRecordedFault(pc);
                        return false;
                    }

                    value = (ulong)w;
                }
                else if (!Load(address, out value))
                {
                    RaiseRecordedFault(pc);
                    return false;
                }

                _s->ReservationAddress = address;
                _s->ReservationValue = value;
                x[ins.Rd] = value;
                return true;
            }

            case Op.ScW:
            case Op.ScD:
            {
                bool reserved = _s->ReservationAddress == address;
                _s->ReservationAddress = ulong.MaxValue;
                byte* p = AtomicPointer(address, size, out _);
                if (p == null)
                {
                    RaiseRecordedFault(pc);
                    return false;
                }

                bool success = reserved && (word
                    ? Interlocked.CompareExchange(ref *(int*)p, (int)src, (int)_s->ReservationValue) == (int)_s->ReservationValue
                    : Interlocked.CompareExchange(ref *(ulong*)p, src, _s->ReservationValue) == _s->ReservationValue);
                x[ins.Rd] = success ? 0UL : 1UL;
                return true;
            }
        }

        byte* ptr = AtomicPointer(address, size, out _);
        if (ptr == null)
        {
            RaiseRecordedFault(pc);
            return false;
        }

        x[ins.Rd] = word ? (ulong)(long)AmoWord(ins.Op, (int*)ptr, (int)src) : AmoDouble(ins.Op, (long*)ptr, (long)src);
        return true;
    }

    private static int AmoWord(Op op, int* p, int v)
    {
        switch (op)
        {
            case Op.AmoswapW: return Interlocked.Exchange(ref *p, v);
            case Op.AmoaddW: return Interlocked.Add(ref *p, v) - v;
            case Op.AmoandW: return Interlocked.And(ref *p, v);
            case Op.AmoorW: return Interlocked.Or(ref *p, v);
        }

        int old;
        do
        {
            old = Volatile.Read(ref *p);
            int next = op switch
            {
                Op.AmoxorW => old ^ v,
                Op.AmominW => Math.Min(old, v),
                Op.AmomaxW => Math.Max(old, v),
                Op.AmominuW => (int)Math.Min((uint)old, (uint)v),
                _ => (int)Math.Max((uint)old, (uint)v),
            };
            if (Interlocked.CompareExchange(ref *p, next, old) == old)
            {
                return old;
            }
        }
        while (true);
    }

    private static ulong AmoDouble(Op op, long* p, long v)
    {
        switch (op)
        {
            case Op.AmoswapD: return (ulong)Interlocked.Exchange(ref *p, v);
            case Op.AmoaddD: return (ulong)(Interlocked.Add(ref *p, v) - v);
            case Op.AmoandD: return (ulong)Interlocked.And(ref *p, v);
            case Op.AmoorD: return (ulong)Interlocked.Or(ref *p, v);
        }

        long old;
        do
        {
            old = Volatile.Read(ref *p);
            long next = op switch
            {
                Op.AmoxorD => old ^ v,
                Op.AmominD => Math.Min(old, v),
                Op.AmomaxD => Math.Max(old, v),
                Op.AmominuD => (long)Math.Min((ulong)old, (ulong)v),
                _ => (long)Math.Max((ulong)old, (ulong)v),
            };
            if (Interlocked.CompareExchange(ref *p, next, old) == old)
            {
                return (ulong)old;
            }
        }
        while (true);
    }
}
