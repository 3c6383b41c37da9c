namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Builds Sv39 (3 levels), Sv48 (4) or Sv57 (5) page tables in a test hart's RAM, as the privileged
/// spec's "Virtual-Memory System" describes them: 4 KiB tables of 512 8-byte PTEs, PPN in bits 53:10.
/// Level 0 maps 4 KiB pages, level 1 2 MiB, level 2 1 GiB, level 3 512 GiB.
/// </summary>
internal sealed class PageTables
{
    public const ulong V = 1, R = 2, W = 4, X = 8, U = 16, G = 32, A = 64, D = 128;

    /// <summary>Where tables are allocated by default: RAM base + 512 KiB.</summary>
    public const ulong Pool = TestHart.RamBase + 0x8_0000;

    /// <summary>Tables one instance may allocate; a second instance takes a pool <see cref="PoolPages"/> pages further.</summary>
    public const int PoolPages = 32;

    private readonly TestHart _hart;
    private readonly ulong _poolEnd;
    private ulong _next;

    public PageTables(TestHart hart, int levels, ulong pool = Pool)
    {
        _next = pool;
        _poolEnd = pool + (PoolPages * 0x1000);
        if (levels is < 3 or > 5)
        {
            throw new ArgumentOutOfRangeException(nameof(levels));
        }

        _hart = hart;
        Levels = levels;
        Root = NewTable();
    }

    public int Levels { get; }

    public ulong Root { get; }

    /// <summary>satp.MODE: Sv39 = 8, Sv48 = 9, Sv57 = 10.</summary>
    public ulong Mode => (ulong)Levels + 5;

    public ulong Satp => (Mode << 60) | (Root >> 12);

    public static ulong Leaf(ulong pa, ulong flags) => ((pa >> 12) << 10) | flags;

    /// <summary>Maps the page of <paramref name="va"/> at <paramref name="level"/> to <paramref name="pa"/>; returns the leaf PTE's address.</summary>
    public ulong Map(ulong va, ulong pa, ulong flags, int level = 0) => SetPte(va, level, Leaf(pa, flags));

    /// <summary>Writes a raw PTE for <paramref name="va"/> at <paramref name="level"/>, creating the tables above it.</summary>
    public ulong SetPte(ulong va, int level, ulong pte)
    {
        ulong address = PteAddress(va, level, create: true);
        _hart.Poke64(address, pte);
        return address;
    }

    public ulong ReadPte(ulong va, int level) => _hart.Peek64(PteAddress(va, level, create: false));

    /// <summary>Maps all RAM (the 1 GiB at 0x8000_0000) one to one with a gigapage, supervisor RWX.</summary>
    public void IdentityMapRam(ulong flags = V | R | W | X | A | D) => Map(TestHart.RamBase, TestHart.RamBase, flags, level: 2);

    private ulong PteAddress(ulong va, int level, bool create)
    {
        ulong table = Root;
        for (int l = Levels - 1; l > level; l--)
        {
            ulong entry = table + (Index(va, l) * 8);
            ulong pte = _hart.Peek64(entry);
            if ((pte & V) == 0)
            {
                Assert.True(create, "no table on the way");
                ulong next = NewTable();
                pte = ((next >> 12) << 10) | V;
                _hart.Poke64(entry, pte);
            }

            Assert.True((pte & (R | X)) == 0, $"level {l} of 0x{va:x} is already a leaf");
            table = ((pte >> 10) & 0xFFF_FFFF_FFFF) << 12;
        }

        return table + (Index(va, level) * 8);
    }

    private static ulong Index(ulong va, int level) => (va >> (12 + (9 * level))) & 0x1FF;

    private ulong NewTable()
    {
        ulong table = _next;
        _next += 0x1000;
        Assert.True(_next <= _poolEnd, "page-table pool exhausted");
        for (ulong i = 0; i < 0x1000; i += 8)
        {
            _hart.Poke64(table + i, 0);
        }

        return table;
    }
}
