using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// One registered job's CPU time per period: its cgroup (found once through the scheduler's locator, then read
/// through a kept-open handle) and its steps' cgroups. Cost per period: one read per cgroup, nothing per other job.
/// </summary>
public sealed class JobCpu : IDisposable
{
    private readonly JobIdentity _job;
    private readonly IJobCgroupLocator? _locator;
    private CgroupCpuReader? _reader;
    private ulong? _readerInode;  // the inode of _reader's cgroup directory when it was opened (null: stat failed)
    private ulong _lastNs;
    private ulong? _lastInode;    // the inode of the cgroup directory _lastNs was read from
    private bool _hasLast;        // _lastNs is a read of the job's cgroup
    private bool _lost;           // the cgroup was read, then lost (removed, or replaced by a requeue)
    private bool _stepsListed;    // the job's steps were listed at least once
    private readonly Dictionary<string, StepEntry> _steps = new(StringComparer.Ordinal);
    private readonly HashSet<string> _stepsSeen = new(StringComparer.Ordinal);
    private readonly List<StepEntry> _listed = new(); // the last listing's readable steps, in its order
    private Native.Libc.FileStatus? _listedState;   // the job directory just before that listing, when it can stand for it
    private ulong[] _readings = [];
    private IReadOnlyList<JobCgroup> _parents = [];
    private readonly List<string> _stepsRead = new(); // the steps the last Sample that read the job's cgroup gave CPU time (their names)
    private bool _removed;        // the cgroup lost was found removed, its CPU time until then taken from a parent (TakeFromParent)
    private readonly List<StepEntry> _vanished = new(); // steps read at the Sample before that the last Sample found gone
    private bool _listingFailed;  // a listing of the job's steps failed since the last one that succeeded
    private bool _baselinePending; // that listing was to be a baseline (ListSteps): the next one that succeeds is one
    private bool _lookupUnknown;  // a lookup of the job's cgroup since its last read could not tell whether it is there

    /// <summary>Listings of the job directory for its steps (the other periods read the steps of the last one).</summary>
    public long ListingCount { get; private set; }

    /// <summary>Monotonic time the job's cgroup was last read, or null if never.</summary>
    public long? LastSeenNs { get; private set; }

    /// <summary>
    /// The last <see cref="Sample"/> read the job's cgroup again after reads of it had failed while it stayed there (same
    /// directory, usage not lower): this period's CPU time holds that of the periods it could not be read, so the job's
    /// rows of this period are flagged. Not so for another cgroup at its path (a requeue while the job stayed registered):
    /// its whole usage is counted once from the period it is found, and the old one's CPU time since its last read is in
    /// the period that lost it (<see cref="Lost"/>, <see cref="FromParent"/>).
    /// </summary>
    public bool Refound { get; private set; }

    /// <summary>
    /// The last <see cref="Sample"/> found the job's cgroup gone (removed, or replaced by a requeue) after a read of it: its
    /// CPU time since that read is not known, so the job's rows of this period are flagged (Slurm removes a job's cgroup
    /// when its last step ends, before its epilog's end reads it, unless the extern step keeps it: PrologFlags=Contain).
    /// </summary>
    public bool Lost { get; private set; }

    /// <summary>
    /// The last <see cref="Sample"/> lost the job's cgroup (<see cref="Lost"/>), and its CPU time since the read before was
    /// taken from the scheduler's cgroup above it (<see cref="ParentCgroups"/>): the period's share is complete.
    /// </summary>
    public bool FromParent { get; private set; }

    /// <summary>
    /// The last <see cref="Sample"/>'s CPU time counts from a read of the same cgroup at the Sample before (not a first
    /// sight, a recovered job's first read, nor a cgroup found again).
    /// </summary>
    public bool Steady { get; private set; }

    /// <summary>
    /// The last <see cref="Sample"/> read the job's cgroup with a usage that did not move, and could not check that its
    /// path still names the directory opened: stat(2) failed with an error other than ENOENT or ENOTDIR
    /// (<see cref="CgroupHierarchy.PresenceOf"/>: EACCES on a directory above, EIO, ...), which is not "gone". The cgroup is
    /// kept and read on; the period's share is not known exact (were it removed on a kernel whose removed file still reads
    /// its last value, the share would miss its CPU time since the read before), so the job's rows of this period are
    /// flagged 2, and it is not <see cref="Steady"/>. Until 2026-12-03 such a stat made the cgroup gone (flags=8), then
    /// found again in the next period.
    /// </summary>
    public bool Unverified { get; private set; }

    /// <summary>
    /// The last <see cref="Sample"/>'s CPU time is not known exact for a lookup of the job's cgroup that could not tell
    /// whether it is there (<see cref="IJobCgroupLocator.Find"/>: <see cref="Presence.Unknown"/>, a stat or a listing on the
    /// way failed with an error other than ENOENT or ENOTDIR): in a period whose lookup says so, its 0 may miss CPU time of
    /// a cgroup that is there; in the period it is found after such lookups, its CPU time holds that of the periods it
    /// could not be found (a job registered by its prolog: its whole usage so far), or for a job taken back by a restarted
    /// sampler with no baseline, 0 (its usage so far: from before the restart or not, not known). The job's rows of the
    /// period are flagged 2. Until 2026-12-03 such a lookup was "no cgroup yet": 0 with no flag, then, found, the whole
    /// usage in one period, or 0 for a job taken back, with no flag.
    /// </summary>
    public bool LookupNotKnown { get; private set; }

    /// <summary>
    /// Whether the last <see cref="Sample"/> found <paramref name="step"/>'s cgroup gone (the step ended, its job's cgroup
    /// stayed) after a read of it at the Sample before: its CPU time since that read is not in its own cgroup any more, and
    /// not known (the job's delta less its other steps' holds it, but also the time of any step made and removed within
    /// the period). Such a step has a part of 0 in that Sample's steps (flags=8: README "Attribution").
    /// </summary>
    public bool StepGone(string step)
    {
        for (int i = 0; i < _vanished.Count; i++) // no enumerator: called per step and channel every period
            if (_vanished[i].Cgroup.Step == step) return true;
        return false;
    }

    /// <summary>
    /// The last <see cref="Sample"/>'s step parts are not exact because a listing of the job's directory failed (any error
    /// but ENOENT or ENOTDIR: <see cref="CgroupHierarchy.Subdirectories"/>), which is not "no step": in the period it
    /// failed, the steps of the last listing were read through their open cgroups, but a step made since has no part; in
    /// the period of the next listing that succeeds, when it finds a step not known before, that step's part holds its
    /// usage since it started, maybe in the periods the listing failed, and the parts are scaled down to the job's
    /// (<see cref="ClampSteps"/>). The node sampler flags those parts 2 (a read failed in the interval: README "Attribution").
    /// </summary>
    public bool StepsNotExact { get; private set; }

    /// <summary>The job's cgroup read by the last <see cref="Sample"/>; null when none was (not found yet, or lost).</summary>
    public string? CgroupDirectory => _reader?.Cgroup.Directory;

    /// <summary>The cgroup the last <see cref="Sample"/> lost (<see cref="Lost"/>), else null.</summary>
    public string? LostDirectory { get; private set; }

    /// <summary>
    /// The scheduler's cgroups above the job's (<see cref="IJobCgroupLocator.Parents"/>), nearest first: of the cgroup
    /// read now, or of the last one read (a lost one's); none while none was found.
    /// </summary>
    public IReadOnlyList<JobCgroup> Parents => _parents;

    /// <summary>
    /// Sampled by cgroup, and no cgroup of it was ever read: where its cgroup is, or was within the period, is not known
    /// (<see cref="ParentCgroups"/>: its CPU time may be in any scheduler cgroup).
    /// </summary>
    public bool Unseen => _locator is not null && !_hasLast;

    /// <summary>
    /// Whether the cgroup lost by the last <see cref="Sample"/> is removed for sure: its path names no directory, or
    /// another one (a requeue's). A read that failed on a cgroup still there is not its removal (its CPU time since goes
    /// on in it).
    /// </summary>
    public bool LostCgroupRemoved() =>
        LostDirectory is { } dir && CgroupHierarchy.PresenceOf(dir, _lastInode) == Presence.Gone;

    /// <summary>
    /// The lost cgroup's CPU time since its last read was taken from a parent cgroup
    /// (<see cref="ParentCgroups"/>): the period has it, and a cgroup found later is a new one, counted whole.
    /// </summary>
    public void TakeFromParent()
    {
        FromParent = true;
        _removed = true;
    }

    /// <param name="recovered">
    /// False for a job registered by its prolog: the cgroup is new, so its whole usage when first seen is this
    /// period's. True for a job recovered by a restarted sampler: the usage so far belongs to periods already gone.
    /// </param>
    public JobCpu(JobIdentity job, IJobCgroupLocator? locator, bool recovered)
    {
        _job = job;
        _locator = locator;
        _recovered = recovered;
        // Its baseline is taken at its registration by the restarted sampler, and again where that sampler's first period
        // starts (Rebase), so that its first period counts from there, not its whole usage since the job started.
        if (recovered) TakeBaseline();
    }

    private readonly bool _recovered;

    /// <summary>A recovered job's baseline, read again at the instant its restarted sampler's first period starts (NodeSampler.Recover).</summary>
    public void Rebase()
    {
        if (_recovered) TakeBaseline();
    }

    /// <summary>The job's and its steps' usage now: what its next period counts from.</summary>
    private void TakeBaseline()
    {
        if (_locator is null || (_reader is null && !TryOpen())) return;
        _stepsListed = false; // every step listed now is a baseline (ListSteps)
        var steps = new List<(string Step, ulong Ns)>();
        if (_locator is IStepCgroupLocator stepLocator) ListSteps(stepLocator, Native.Libc.StatPath(_reader!.Cgroup.Directory), steps);
        _vanished.Clear(); // gone before the period that starts here
        if (!_reader!.TryReadNs(out ulong ns)) return;
        (_lastNs, _lastInode, _hasLast, _lookupUnknown) = (ns, _readerInode, true, false);
        _stepsRead.Clear(); // read here: a loss in the first period misses their time since
        foreach (var (step, _) in steps) _stepsRead.Add(step);
    }

    /// <summary>
    /// CPU ns the job used since the previous call; its steps' parts go to <paramref name="steps"/>, never more than the
    /// job's in total (README "Attribution": steps are parts of their job's share).
    /// </summary>
    public ulong Sample(long monotonicNs, List<(string Step, ulong Ns)> steps)
    {
        steps.Clear();
        Refound = Lost = FromParent = Steady = StepsNotExact = Unverified = false;
        LostDirectory = null;
        _vanished.Clear();
        bool found = _locator is not null && (_reader is not null || TryOpen());
        LookupNotKnown = _lookupUnknown; // not found now, or found after lookups that could not tell
        if (!found) return 0;

        // Steps first, then the job: the kernel charges a step's CPU time to its job as well, so a job read after its
        // steps holds all they read, whatever ran between the reads (read the other way, that time was in the steps only).
        if (_locator is IStepCgroupLocator stepLocator)
        {
            var state = Native.Libc.StatPath(_reader!.Cgroup.Directory);
            if (state is null || state != _listedState || !ReadListedSteps(steps))
                ListSteps(stepLocator, state, steps);
        }

        // A removed cgroup's open file may still read (its last value, on some kernels and on plain files): a usage
        // that did not move is checked against the directory, so a gone or replaced cgroup is seen (one stat, idle jobs only);
        // a stat that fails otherwise than ENOENT or ENOTDIR does not say it is gone (Unverified).
        bool read = _reader!.TryReadNs(out ulong ns);
        var at = read && _hasLast && ns == _lastNs ? CgroupHierarchy.PresenceOf(_reader.Cgroup.Directory, _readerInode) : Presence.There;
        if (!read || at == Presence.Gone)
        {
            Lost = _hasLast && !_lost;
            if (Lost) LostDirectory = _reader.Cgroup.Directory;
            _lost |= _hasLast;
            DropCgroup(); // removed (or replaced by a requeue): look it up again next period
            // The steps read at the read before miss their CPU time since, as the job does: each gets a part of 0 in this
            // period, which the node sampler flags (a step's part has no parent cgroup to take it from: README "Attribution").
            steps.Clear();
            if (Lost) foreach (string step in _stepsRead) steps.Add((step, 0));
            _stepsRead.Clear();
            _vanished.Clear(); // flagged with the job (its steps' parts above)
            return 0;
        }
        LastSeenNs = monotonicNs;
        Unverified = at == Presence.Unknown;
        ulong delta;
        if (_lost)
        {
            // Read again after it was lost: the same cgroup (same directory inode, usage not lower) goes on from its last
            // usage; another one (a requeue) is new, so its whole usage is since the old one's last read: counted once.
            bool same = !_removed && (_readerInode is null || _lastInode is null || _readerInode == _lastInode) && ns >= _lastNs;
            delta = same ? ns - _lastNs : ns;
            _lost = _removed = false;
            Refound = same;
        }
        // First sight: a recovered job's usage so far belongs to periods already gone; a new job's is all this period's.
        else if (!_hasLast) delta = _recovered ? 0 : ns;
        else
        {
            delta = ns - Math.Min(ns, _lastNs);
            Steady = !Unverified;
        }
        (_lastNs, _lastInode, _hasLast, _lookupUnknown) = (ns, _readerInode, true, false);
        ClampSteps(steps, delta);
        _stepsRead.Clear();
        foreach (var (step, _) in steps) _stepsRead.Add(step);
        foreach (var v in _vanished) steps.Add((v.Cgroup.Step, 0)); // its time since its last read is not known (StepGone)
        return delta;
    }

    /// <summary>
    /// Finds the job's cgroup through the scheduler's locator and opens its usage file; false while there is none, or
    /// while the lookup cannot tell (<see cref="LookupNotKnown"/>).
    /// </summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(_reader))]
    private bool TryOpen()
    {
        JobCgroup? cg;
        var presence = Presence.Gone;
        try { cg = _locator!.Find(_job, out presence); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { (cg, presence) = (null, Presence.Unknown); }
        _lookupUnknown |= cg is null && presence == Presence.Unknown;
        if (cg is null || CgroupCpuReader.TryOpen(cg) is not { } opened) return false;
        _reader = opened;
        _parents = _locator!.Parents(cg) is { Count: > 0 } up ? up.Select(d => cg with { Directory = d }).ToArray() : [];
        _readerInode = Native.Libc.StatPath(opened.Cgroup.Directory)?.Ino;
        return true;
    }

    /// <summary>Forgets the job's cgroup and its steps' (a requeue makes new step cgroups, maybe at the same paths).</summary>
    private void DropCgroup()
    {
        _reader!.Dispose();
        _reader = null;
        _listedState = null; // a new job directory is listed anew, whatever inode it reuses
        _listingFailed = _baselinePending = false;
        foreach (var e in _steps.Values) e.Reader.Dispose();
        _steps.Clear();
        _listed.Clear();
    }

    /// <summary>
    /// Steps above their job in a period (CPU time a step ran between the step reads and the job's read of the period
    /// before reaches the step one period after the job) are scaled down to the job's: step × job / Σ steps, floored, so
    /// Σ step shares ≤ the job's share in every period; the step time cut is at most that gap.
    /// </summary>
    private static void ClampSteps(List<(string Step, ulong Ns)> steps, ulong jobNs)
    {
        UInt128 sum = 0;
        foreach (var (_, ns) in steps) sum += ns;
        if (sum <= jobNs) return;
        for (int i = 0; i < steps.Count; i++)
            steps[i] = (steps[i].Step, (ulong)(steps[i].Ns * (UInt128)jobNs / sum));
    }

    /// <summary>
    /// The steps of the last listing, read again without listing the job directory: only while its stat is what it was
    /// just before that listing (<see cref="_listedState"/>), which, where the link count is 2 + the subdirectories,
    /// means no step cgroup was created or removed since — except a removal and a creation in the same interval, which
    /// the removed step itself shows: its reads fail (cgroupfs: ENODEV once removed, checked on v1 and v2) or its usage
    /// stops and its directory is gone. False (nothing taken) when a step is gone or unreadable: the caller lists.
    /// </summary>
    private bool ReadListedSteps(List<(string Step, ulong Ns)> steps)
    {
        var listed = _listed;
        if (_readings.Length < listed.Count) _readings = new ulong[listed.Count * 2];
        bool unverified = false;
        for (int i = 0; i < listed.Count; i++)
        {
            var e = listed[i];
            if (!TryReadStillThere(e, out ulong ns, ref unverified)) return false;
            _readings[i] = ns;
        }
        for (int i = 0; i < listed.Count; i++) Take(listed[i], _readings[i], steps);
        StepsNotExact |= unverified;
        return true;
    }

    /// <summary>
    /// A known step's usage, false when it is gone: its read fails (cgroupfs: ENODEV once removed) or its usage stopped and
    /// its directory is gone (<see cref="CgroupHierarchy.PresenceOf"/>). A usage that stopped where the directory cannot be
    /// stat'ed (an error other than ENOENT or ENOTDIR) keeps the step and sets <paramref name="unverified"/>: its part is
    /// not known exact (until 2026-12-03 the step was gone, then new at the next listing, its whole usage in one period).
    /// </summary>
    private static bool TryReadStillThere(StepEntry e, out ulong ns, ref bool unverified)
    {
        if (!e.Reader.TryReadNs(out ns)) return false;
        if (ns != e.LastNs) return true;
        var at = CgroupHierarchy.PresenceOf(e.Cgroup.Directory);
        unverified |= at == Presence.Unknown;
        return at != Presence.Gone;
    }

    /// <summary>A known step's part of the period: its usage since its last read.</summary>
    private static void Take(StepEntry e, ulong ns, List<(string Step, ulong Ns)> steps)
    {
        steps.Add((e.Cgroup.Step, ns - Math.Min(ns, e.LastNs)));
        e.LastNs = ns;
    }

    /// <summary>
    /// Lists the job's step cgroups (the scheduler's layout) and reads each. The listing is kept for
    /// <see cref="ReadListedSteps"/> only when the job directory's link count, taken before it, is 2 + the steps listed:
    /// the directory holds nothing else and its file system counts subdirectories in it.
    /// </summary>
    private void ListSteps(IStepCgroupLocator locator, Native.Libc.FileStatus? before, List<(string Step, ulong Ns)> steps)
    {
        steps.Clear();
        _vanished.Clear();
        bool baseline = _baselinePending || (_recovered && !_stepsListed) || (_lost && _readerInode is not null && _readerInode == _lastInode);
        _stepsListed = true;
        ListingCount++;
        if (locator.EnumerateSteps(_reader!.Cgroup) is not { } found)
        {
            // Not listed (EACCES, EMFILE, ...: not "no step"): the steps known go on, each read through its open cgroup.
            // Until 2026-12-03 every one of them was taken for gone (0, flags=8), then found again as new at the next
            // listing, its whole usage since it started counted in one period.
            ReadKnownSteps(steps);
            _listedState = null; // listed again at the next Sample
            (_listingFailed, _baselinePending, StepsNotExact) = (true, baseline, true);
            return;
        }
        _stepsSeen.Clear();
        _listed.Clear();
        bool complete = true;
        foreach (var step in found)
        {
            _stepsSeen.Add(step.Directory);
            bool known = _steps.TryGetValue(step.Directory, out var entry);
            if (!known)
            {
                if (CgroupCpuReader.TryOpen(new JobCgroup(step.JobId, step.Directory, step.Version)) is not { } r) { complete = false; continue; }
                entry = new StepEntry(step, r);
                StepsNotExact |= _listingFailed; // maybe made while the listing failed: its part may hold those periods
            }
            if (!entry!.Reader.TryReadNs(out ulong sns))
            {
                // Removed since the listing, or replaced at the same path: opened anew at the next listing.
                entry.Reader.Dispose();
                if (known)
                {
                    _steps.Remove(step.Directory);
                    _vanished.Add(entry); // read at the Sample before: its time since is not in its own cgroup any more
                }
                complete = false;
                continue;
            }
            if (!known) _steps[step.Directory] = entry;
            // A new step's whole usage is this period's, except at the first listing of a recovered job (its usage so far
            // belongs to periods already gone) and of a lost job cgroup found again unchanged (counted before it was lost).
            ulong sd = known || !baseline ? sns - Math.Min(sns, entry.LastNs) : 0;
            entry.LastNs = sns;
            steps.Add((step.Step, sd));
            _listed.Add(entry);
        }
        if (_steps.Count > _stepsSeen.Count) // a step ended: no list is built per period otherwise
            foreach (var gone in _steps.Keys.Where(k => !_stepsSeen.Contains(k)).ToList())
            {
                _steps[gone].Reader.Dispose();
                _vanished.Add(_steps[gone]); // read at the Sample before (every known step is read at each Sample)
                _steps.Remove(gone);
            }
        _listedState = complete && before is { } b && b.Links == 2 + (ulong)found.Count ? before : null;
        _listingFailed = _baselinePending = false;
    }

    /// <summary>
    /// A listing that failed: the steps of the last one that succeeded, each read through its open cgroup; one whose read
    /// fails, or whose usage stopped and whose directory is gone, is gone (<see cref="StepGone"/>), as at a listing. The
    /// parts are flagged (<see cref="StepsNotExact"/>), a step that could not be stat'ed's too.
    /// </summary>
    private void ReadKnownSteps(List<(string Step, ulong Ns)> steps)
    {
        bool unverified = false; // flagged with the listing that failed
        for (int i = 0; i < _listed.Count; i++)
        {
            var e = _listed[i];
            if (TryReadStillThere(e, out ulong ns, ref unverified)) { Take(e, ns, steps); continue; }
            e.Reader.Dispose();
            _steps.Remove(e.Cgroup.Directory);
            _vanished.Add(e);
            _listed.RemoveAt(i--);
        }
    }

    public void Dispose()
    {
        _reader?.Dispose();
        foreach (var e in _steps.Values) e.Reader.Dispose();
    }

    /// <summary>A step cgroup being read: its kept-open reader and its usage at the last read.</summary>
    private sealed class StepEntry(StepCgroup cgroup, CgroupCpuReader reader)
    {
        public StepCgroup Cgroup { get; } = cgroup;
        public CgroupCpuReader Reader { get; } = reader;
        public ulong LastNs;
    }
}
