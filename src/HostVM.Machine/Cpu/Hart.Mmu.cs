using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Cpu;

/// <summary>Address translation: the soft TLBs, the Sv39/48/57 walker, PMP, and the slow load/store paths.</summary>
public sealed unsafe partial class Hart
{
    public const int TlbEntries = 512;
    private const ulong TlbMask = TlbEntries - 1;
    private const int TlbContexts = 4; // U, S, S with SUM, M (untranslated)
    private const int TlbKinds = 3;    // fetch, read, write

    private const ulong PteV = 1, PteR = 2, PteW = 4, PteX = 8, PteU = 16, PteA = 64, PteD = 128;
    private const ulong PteReservedMask = 0xFFC0_0000_0000_0000;

    private TlbEntry* _tlbs;
    private TlbEntry* _fetchTlb;
    private TlbEntry* _readTlb;
    private TlbEntry* _writeTlb;
    private PrivilegeMode _dataPriv;

    // The current TLB epoch, in bits 1..11 of every valid tag (bit 0 stays clear so InvalidTag never matches).
    private const ulong TlbEpochMask = 0xFFE;
    private ulong _tlbEpoch;

    // Fetch translations are valid while this is unchanged: a TLB-flush generation (step 4) plus the
    // privilege (low two bits). The jump cache tags its entries with it.
    private ulong _translationGeneration;
    private ulong _fetchContext;

    // The trap a failed access wants raised; the interpreter raises it with the instruction's pc.
    private ulong _faultCause;
    private ulong _faultValue;

    /// <summary>Sv39 = 8, Sv48 = 9, Sv57 = 10: the deepest satp mode accepted (the rest are WARL-ignored).</summary>
    public int MaxSatpMode { get; set; } = 10;

    private void AllocateTlbs()
    {
        nuint bytes = (nuint)(TlbContexts * TlbKinds * TlbEntries * sizeof(TlbEntry));
        _tlbs = (TlbEntry*)NativeMemory.AlignedAlloc(bytes, 64);
        for (int i = 0; i < TlbContexts * TlbKinds * TlbEntries; i++)
        {
            _tlbs[i].Tag = TlbEntry.InvalidTag;
        }
    }

    private void FreeTlbs()
    {
        NativeMemory.AlignedFree(_tlbs);
        _tlbs = null;
    }

    /// <summary>
    /// Forgets every translation (SFENCE.VMA, PMP changes). Entries carry the epoch they were filled
    /// in (in the tag's low bits), so this is one increment; only when the epoch wraps are the
    /// tables really cleared.
    /// </summary>
    public void FlushTlb()
    {
        ForgetDecodedFetches();
        _tlbEpoch = (_tlbEpoch + 2) & TlbEpochMask;
        if (_tlbEpoch == 0)
        {
            for (int i = 0; i < TlbContexts * TlbKinds * TlbEntries; i++)
            {
                _tlbs[i].Tag = TlbEntry.InvalidTag;
            }
        }
    }

    /// <summary>Forgets the translations of the page holding <paramref name="va"/> (SFENCE.VMA with an address).</summary>
    public void FlushTlbPage(ulong va)
    {
        ForgetDecodedFetches();
        ulong index = (va >> 12) & TlbMask;
        for (int array = 0; array < TlbContexts * TlbKinds; array++)
        {
            _tlbs[((ulong)array * TlbEntries) + index].Tag = TlbEntry.InvalidTag;
        }
    }

    /// <summary>The jump cache skips the fetch TLB: any change of translation invalidates it all.</summary>
    private void ForgetDecodedFetches()
    {
        _translationGeneration += 4; // the low two bits are the fetch context (see UpdateTranslationContext)
        _fetchContext = _translationGeneration | (_fetchContext & 3);
    }

    private TlbEntry* TlbFor(PrivilegeMode priv, bool sum, AccessKind kind)
    {
        int ctx = priv switch
        {
            PrivilegeMode.User => 0,
            PrivilegeMode.Supervisor => sum ? 2 : 1,
            _ => 3,
        };
        return _tlbs + (((ctx * TlbKinds) + (int)kind) * TlbEntries);
    }

    /// <summary>Re-selects the TLBs after a change of privilege, MPRV/MPP or SUM.</summary>
    private void UpdateTranslationContext()
    {
        ulong mstatus = _s->Mstatus;
        _dataPriv = _s->Priv == PrivilegeMode.Machine && (mstatus & Csr.StatusMprv) != 0
            ? (PrivilegeMode)((mstatus >> Csr.StatusMppShift) & 3)
            : _s->Priv;
        bool sum = (mstatus & Csr.StatusSum) != 0;
        _fetchTlb = TlbFor(_s->Priv, false, AccessKind.Fetch);
        _fetchContext = _translationGeneration | (ulong)_s->Priv;
        _readTlb = TlbFor(_dataPriv, sum, AccessKind.Read);
        _writeTlb = TlbFor(_dataPriv, sum, AccessKind.Write);
    }

    /// <summary>
    /// Forgets every write translation, keeping fetch and read ones (a dirty-log pass: the next store to
    /// each page takes the slow path and marks it). On the hart's own thread, between blocks.
    /// </summary>
    private void DropWriteTlb()
    {
        for (int ctx = 0; ctx < TlbContexts; ctx++)
        {
            TlbEntry* t = _tlbs + (((ctx * TlbKinds) + (int)AccessKind.Write) * TlbEntries);
            for (int i = 0; i < TlbEntries; i++)
            {
                t[i].Tag = TlbEntry.InvalidTag;
            }
        }
    }

    /// <summary>Called by the code cache (any thread): drop write mappings of a page that now holds code.</summary>
    private void DropWriteMappings(ulong physicalPage)
    {
        TlbEntry* tlbs = _tlbs;
        if (tlbs == null)
        {
            return;
        }

        ulong hostPage = (ulong)_ram.Pointer + (physicalPage - _ram.BaseAddress);
        for (int ctx = 0; ctx < TlbContexts; ctx++)
        {
            TlbEntry* t = tlbs + (((ctx * TlbKinds) + (int)AccessKind.Write) * TlbEntries);
            for (int i = 0; i < TlbEntries; i++)
            {
                ulong tag = Volatile.Read(ref t[i].Tag);
                if (tag != TlbEntry.InvalidTag && (tag & ~0xFFFUL) + t[i].Addend == hostPage)
                {
                    Volatile.Write(ref t[i].Tag, TlbEntry.InvalidTag);
                }
            }
        }
    }

    // ---- fast paths (inlined into the interpreter) ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Load<T>(ulong va, out T value)
        where T : unmanaged
    {
        TlbEntry* e = _readTlb + ((va >> 12) & TlbMask);
        if (e->Tag == (((va + (ulong)sizeof(T) - 1) & ~0xFFFUL) | _tlbEpoch))
        {
            value = Unsafe.ReadUnaligned<T>((void*)(va + e->Addend));
            return true;
        }

        bool ok = LoadSlow(va, sizeof(T), out ulong raw);
        value = Unsafe.As<ulong, T>(ref raw);
        return ok;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Store<T>(ulong va, T value)
        where T : unmanaged
    {
        TlbEntry* e = _writeTlb + ((va >> 12) & TlbMask);
        if (e->Tag == (((va + (ulong)sizeof(T) - 1) & ~0xFFFUL) | _tlbEpoch))
        {
            Unsafe.WriteUnaligned((void*)(va + e->Addend), value);
            return true;
        }

        ulong raw = 0;
        Unsafe.As<ulong, T>(ref raw) = value;
        return StoreSlow(va, sizeof(T), raw);
    }

    /// <summary>Host pointer for an aligned atomic access (AMO, LR/SC), or null with the fault recorded.</summary>
    private byte* AtomicPointer(ulong va, int size, out ulong pa)
    {
        pa = 0;
        if ((va & (ulong)(size - 1)) != 0)
        {
            return Fault(TrapCause.StoreMisaligned, va);
        }

        TlbEntry* e = _writeTlb + ((va >> 12) & TlbMask);
        if (e->Tag == ((va & ~0xFFFUL) | _tlbEpoch))
        {
            byte* host = (byte*)(va + e->Addend);
            pa = (ulong)(host - _ram.Pointer) + _ram.BaseAddress;
            return host;
        }

        if (!Translate(va, AccessKind.Write, _dataPriv, out pa))
        {
            return null;
        }

        if (!_bus.IsPlainRamPage(pa) || !PmpAllows(pa, (ulong)size, AccessKind.Write, _dataPriv))
        {
            return Fault(TrapCause.StoreAccessFault, va);
        }

        _code.InvalidatePage(pa);
        _dirty.Mark(pa); // before the fill: see StoreSlow
        if (PmpCoversPage(pa, AccessKind.Write, _dataPriv))
        {
            FillTlb(_writeTlb, va, pa, AccessKind.Write);
        }

        return _ram.Pointer + (pa - _ram.BaseAddress);
    }

    private byte* Fault(TrapCause cause, ulong value)
    {
        _faultCause = (ulong)cause;
        _faultValue = value;
        return null;
    }

    // ---- slow paths ----

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool LoadSlow(ulong va, int size, out ulong value)
    {
        value = 0;
        if ((va & 0xFFF) + (ulong)size > 0x1000)
        {
            // Misaligned across a page boundary: byte by byte, each byte translated on its own.
            for (int i = 0; i < size; i++)
            {
                if (!LoadSlow(va + (ulong)i, 1, out ulong b))
                {
                    return false;
                }

                value |= b << (8 * i);
            }

            return true;
        }

        if (!Translate(va, AccessKind.Read, _dataPriv, out ulong pa))
        {
            return false;
        }

        if (!PmpAllows(pa, (ulong)size, AccessKind.Read, _dataPriv))
        {
            Fault(TrapCause.LoadAccessFault, va);
            return false;
        }

        if (_bus.IsPlainRamPage(pa))
        {
            if (PmpCoversPage(pa, AccessKind.Read, _dataPriv))
            {
                FillTlb(_readTlb, va, pa, AccessKind.Read);
            }

            byte* p = _ram.Pointer + (pa - _ram.BaseAddress);
            value = size switch
            {
                1 => *p,
                2 => Unsafe.ReadUnaligned<ushort>(p),
                4 => Unsafe.ReadUnaligned<uint>(p),
                _ => Unsafe.ReadUnaligned<ulong>(p),
            };
            return true;
        }

        if (!_bus.TryRead(pa, size, out value))
        {
            Fault(TrapCause.LoadAccessFault, va);
            return false;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool StoreSlow(ulong va, int size, ulong value)
    {
        if ((va & 0xFFF) + (ulong)size > 0x1000)
        {
            // Translate both pages before writing anything, so a fault leaves memory untouched.
            ulong lastByte = va + (ulong)size - 1;
            if (!Translate(va, AccessKind.Write, _dataPriv, out _) || !Translate(lastByte, AccessKind.Write, _dataPriv, out _))
            {
                return false;
            }

            for (int i = 0; i < size; i++)
            {
                if (!StoreSlow(va + (ulong)i, 1, value >> (8 * i)))
                {
                    return false;
                }
            }

            return true;
        }

        if (!Translate(va, AccessKind.Write, _dataPriv, out ulong pa))
        {
            return false;
        }

        if (!PmpAllows(pa, (ulong)size, AccessKind.Write, _dataPriv))
        {
            Fault(TrapCause.StoreAccessFault, va);
            return false;
        }

        if (_bus.IsPlainRamPage(pa))
        {
            _code.InvalidatePage(pa);
            // Every slow-path store marks (code pages included), and marks BEFORE the write-TLB fill:
            // while the dirty log is on, a write-TLB entry may exist only for a page that was marked
            // when it was filled, so fast-path stores through it are in the marks a pass takes (see
            // DirtyPageTracker). Marking before the store itself is safe for a hart (not for a device):
            // a pass waits for the hart to reach a block boundary, after this store.
            _dirty.Mark(pa);
            if (PmpCoversPage(pa, AccessKind.Write, _dataPriv))
            {
                FillTlb(_writeTlb, va, pa, AccessKind.Write);
            }

            byte* p = _ram.Pointer + (pa - _ram.BaseAddress);
            switch (size)
            {
                case 1: *p = (byte)value; break;
                case 2: Unsafe.WriteUnaligned(p, (ushort)value); break;
                case 4: Unsafe.WriteUnaligned(p, (uint)value); break;
                default: Unsafe.WriteUnaligned(p, value); break;
            }

            return true;
        }

        if (_ram.Contains(pa, (ulong)size))
        {
            // RAM overlaid by a device page (e.g. HTIF tohost): the device answers, or the RAM under
            // the page's gaps takes the store.
            _code.InvalidatePage(pa);
            _dirty.Mark(pa);
        }

        if (!_bus.TryWrite(pa, size, value))
        {
            Fault(TrapCause.StoreAccessFault, va);
            return false;
        }

        return true;
    }

    private void FillTlb(TlbEntry* tlb, ulong va, ulong pa, AccessKind kind)
    {
        TlbEntry* e = tlb + ((va >> 12) & TlbMask);
        ulong vpage = va & ~0xFFFUL;
        ulong hostPage = (ulong)_ram.Pointer + ((pa & ~0xFFFUL) - _ram.BaseAddress);
        e->Addend = hostPage - vpage;
        Volatile.Write(ref e->Tag, vpage | _tlbEpoch);
        if (kind == AccessKind.Write)
        {
            // Pairs with CodeCache.Insert: flag first there, entry first here, then each checks the other.
            Interlocked.MemoryBarrier();
            if (_code.IsCodePage(pa))
            {
                Volatile.Write(ref e->Tag, TlbEntry.InvalidTag);
            }
        }
    }

    /// <summary>
    /// Translates a guest-virtual address for an access of the given kind at the given privilege,
    /// setting A/D bits. On failure records the page fault (or access fault) and returns false.
    /// </summary>
    private bool Translate(ulong va, AccessKind kind, PrivilegeMode priv, out ulong pa)
    {
        ulong satp = _s->Satp;
        int mode = (int)(satp >> 60);
        if (priv == PrivilegeMode.Machine || mode == 0)
        {
            pa = va;
            return true;
        }

        int levels = mode - 5; // 8 -> 3 (Sv39), 9 -> 4 (Sv48), 10 -> 5 (Sv57)
        int vaBits = 12 + (9 * levels);
        long signExtended = (long)(va << (64 - vaBits)) >> (64 - vaBits);
        if ((ulong)signExtended != va)
        {
            pa = 0;
            return PageFault(kind, va);
        }

        while (true)
        {
            ulong table = (satp & 0x0FFF_FFFF_FFFF) << 12;
            for (int level = levels - 1; level >= 0; level--)
            {
                ulong vpn = (va >> (12 + (9 * level))) & 0x1FF;
                ulong pteAddress = table + (vpn * 8);
                byte* ptePointer = _ram.HostPointer(pteAddress, 8);
                // Page-table reads (and A/D writes) are checked by PMP as S-mode accesses.
                if (ptePointer == null || !PmpAllows(pteAddress, 8, AccessKind.Read, PrivilegeMode.Supervisor))
                {
                    pa = 0;
                    return AccessFault(kind, va);
                }

                ulong pte = Volatile.Read(ref *(ulong*)ptePointer);
                if ((pte & PteV) == 0 || ((pte & PteR) == 0 && (pte & PteW) != 0) || (pte & PteReservedMask) != 0)
                {
                    pa = 0;
                    return PageFault(kind, va);
                }

                ulong ppn = (pte >> 10) & 0xFFF_FFFF_FFFF;
                if ((pte & (PteR | PteX)) == 0)
                {
                    if (level == 0)
                    {
                        break;
                    }

                    table = ppn << 12;
                    continue;
                }

                // A leaf.
                if (!LeafAllows(pte, kind, priv))
                {
                    pa = 0;
                    return PageFault(kind, va);
                }

                ulong levelMask = (1UL << (9 * level)) - 1;
                if ((ppn & levelMask) != 0)
                {
                    pa = 0;
                    return PageFault(kind, va); // misaligned superpage
                }

                ulong needed = PteA | (kind == AccessKind.Write ? PteD : 0);
                if ((pte & needed) != needed)
                {
                    if (!PmpAllows(pteAddress, 8, AccessKind.Write, PrivilegeMode.Supervisor))
                    {
                        pa = 0;
                        return AccessFault(kind, va);
                    }

                    ulong updated = pte | needed;
                    if (Interlocked.CompareExchange(ref *(ulong*)ptePointer, updated, pte) != pte)
                    {
                        goto Retry; // the PTE changed under us: walk again
                    }

                    _code.InvalidatePage(pteAddress);
                    _dirty.Mark(pteAddress); // the walker's A/D update is a store to RAM too
                }

                ulong offsetMask = (1UL << (12 + (9 * level))) - 1;
                pa = ((ppn << 12) & ~offsetMask) | (va & offsetMask);
                return true;
            }

            pa = 0;
            return PageFault(kind, va);
        Retry:;
        }
    }

    private bool LeafAllows(ulong pte, AccessKind kind, PrivilegeMode priv)
    {
        bool user = (pte & PteU) != 0;
        if (priv == PrivilegeMode.User && !user)
        {
            return false;
        }

        if (priv == PrivilegeMode.Supervisor && user && (kind == AccessKind.Fetch || (_s->Mstatus & Csr.StatusSum) == 0))
        {
            return false;
        }

        return kind switch
        {
            AccessKind.Fetch => (pte & PteX) != 0,
            AccessKind.Read => (pte & PteR) != 0 || ((_s->Mstatus & Csr.StatusMxr) != 0 && (pte & PteX) != 0),
            _ => (pte & PteW) != 0,
        };
    }

    private bool PageFault(AccessKind kind, ulong va)
    {
        Fault(kind switch
        {
            AccessKind.Fetch => TrapCause.InstructionPageFault,
            AccessKind.Read => TrapCause.LoadPageFault,
            _ => TrapCause.StorePageFault,
        }, va);
        return false;
    }

    private bool AccessFault(AccessKind kind, ulong va)
    {
        Fault(kind switch
        {
            AccessKind.Fetch => TrapCause.InstructionAccessFault,
            AccessKind.Read => TrapCause.LoadAccessFault,
            _ => TrapCause.StoreAccessFault,
        }, va);
        return false;
    }

    // ---- PMP ----

    private bool _pmpActive;

    /// <summary>True when the whole access may proceed under PMP.</summary>
    private bool PmpAllows(ulong pa, ulong size, AccessKind kind, PrivilegeMode priv)
    {
        if (!_pmpActive)
        {
            return true;
        }

        int match = PmpMatch(pa, size, out bool whole);
        if (match < 0)
        {
            return priv == PrivilegeMode.Machine;
        }

        if (!whole)
        {
            return false;
        }

        byte cfg = _s->PmpCfg[match];
        if (priv == PrivilegeMode.Machine && (cfg & 0x80) == 0)
        {
            return true;
        }

        return kind switch
        {
            AccessKind.Read => (cfg & 1) != 0,
            AccessKind.Write => (cfg & 2) != 0,
            _ => (cfg & 4) != 0,
        };
    }

    /// <summary>True when PMP gives the whole page containing <paramref name="pa"/> the same answer, so it may be cached.</summary>
    private bool PmpCoversPage(ulong pa, AccessKind kind, PrivilegeMode priv) =>
        !_pmpActive || PmpAllows(pa & ~0xFFFUL, 0x1000, kind, priv);

    private int PmpMatch(ulong pa, ulong size, out bool whole)
    {
        for (int i = 0; i < 16; i++)
        {
            byte cfg = _s->PmpCfg[i];
            int a = (cfg >> 3) & 3;
            if (a == 0)
            {
                continue;
            }

            ulong lo, hi;
            ulong addr = _s->PmpAddr[i];
            if (a == 1)
            {
                lo = i == 0 ? 0 : _s->PmpAddr[i - 1] << 2;
                hi = addr << 2;
            }
            else if (a == 2)
            {
                lo = addr << 2;
                hi = lo + 4;
            }
            else
            {
                int ones = System.Numerics.BitOperations.TrailingZeroCount(~addr);
                if (ones >= 54)
                {
                    lo = 0;
                    hi = ulong.MaxValue;
                }
                else
                {
                    lo = (addr & ~((1UL << ones) - 1)) << 2;
                    hi = lo + (8UL << ones);
                }
            }

            if (pa < hi && pa + size > lo)
            {
                whole = pa >= lo && pa + size <= hi;
                return i;
            }
        }

        whole = false;
        return -1;
    }

    private void UpdatePmpActive()
    {
        bool active = false;
        for (int i = 0; i < 16; i++)
        {
            active |= ((_s->PmpCfg[i] >> 3) & 3) != 0;
        }

        _pmpActive = active;
        FlushTlb();
    }
}
