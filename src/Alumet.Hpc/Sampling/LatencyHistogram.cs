namespace Alumet.Hpc.Sampling;

/// <summary>Tick lateness in 1 µs buckets up to 10 ms (fixed memory, no allocation per tick).</summary>
public sealed class LatencyHistogram
{
    private readonly long[] _buckets = new long[10_001];

    public long Count { get; private set; }
    public long MaxNs { get; private set; }
    public double SumNs { get; private set; }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)] // on every tick
    public void Add(long latenessNs)
    {
        if (latenessNs < 0) latenessNs = 0;
        long us = latenessNs / 1000;
        _buckets[us >= _buckets.Length ? _buckets.Length - 1 : us]++;
        Count++;
        SumNs += latenessNs;
        if (latenessNs > MaxNs) MaxNs = latenessNs;
    }

    /// <summary>Percentile in µs (upper edge of the bucket).</summary>
    public double PercentileUs(double p)
    {
        if (Count == 0) return 0;
        long rank = (long)Math.Ceiling(p / 100.0 * Count);
        long seen = 0;
        for (int i = 0; i < _buckets.Length; i++)
        {
            seen += _buckets[i];
            if (seen >= rank) return i + 1;
        }
        return _buckets.Length;
    }
}
